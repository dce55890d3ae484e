//go:build unix

package ingress

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/valyala/fasthttp"
)

// tcpPair returns a leanConn (server side) and the raw client side of one loopback TCP connection.
func tcpPair(t testing.TB) (*leanConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	lc, ok := newLeanConn(sc, new(atomic.Int32)).(*leanConn)
	if !ok {
		t.Fatalf("newLeanConn(%T) did not wrap", sc)
	}
	t.Cleanup(func() { lc.Close(); client.Close() })
	return lc, client
}

// TestLeanConnSmallReadKeepsRest: a 1-byte read (fasthttp's idle wait) takes the whole request from the
// socket; the rest is handed out by the next reads, after which no chunk is held.
func TestLeanConnSmallReadKeepsRest(t *testing.T) {
	lc, client := tcpPair(t)
	msg := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := client.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if n, err := lc.Read(one[:]); n != 1 || err != nil || one[0] != 'G' {
		t.Fatalf("Read(1) = %d, %v, %q", n, err, one[:n])
	}
	if lc.chunk == nil {
		t.Fatal("the rest of the request was not kept in a chunk")
	}
	rest := make([]byte, 5)
	var got strings.Builder
	got.WriteByte(one[0])
	for got.Len() < len(msg) {
		n, err := lc.Read(rest)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(rest[:n])
	}
	if got.String() != msg {
		t.Fatalf("read %q, want %q", got.String(), msg)
	}
	if lc.chunk != nil {
		t.Fatal("chunk still held after every byte was handed out")
	}
}

// TestLeanConnLargeBody: a body bigger than a chunk arrives whole through small and large reads.
func TestLeanConnLargeBody(t *testing.T) {
	lc, client := tcpPair(t)
	body := strings.Repeat("0123456789abcdef", 3*leanChunkSize/16+7)
	go func() { _, _ = client.Write([]byte(body)) }()
	var got strings.Builder
	var one [1]byte
	if _, err := io.ReadFull(lc, one[:]); err != nil {
		t.Fatal(err)
	}
	got.WriteByte(one[0])
	big := make([]byte, 2*leanChunkSize)
	for got.Len() < len(body) {
		n, err := lc.Read(big)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(big[:n])
	}
	if got.String() != body {
		t.Fatal("body differs")
	}
}

// TestLeanConnEOFAndDeadline: a closed client reads as io.EOF; an expired read deadline as a timeout
// (os.ErrDeadlineExceeded), without holding a chunk while it waited.
func TestLeanConnEOFAndDeadline(t *testing.T) {
	lc, client := tcpPair(t)
	if err := lc.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	_, err := lc.Read(one[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}
	if lc.chunk != nil {
		t.Fatal("a chunk is held by a connection that waited")
	}
	if err := lc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if n, err := lc.Read(one[:]); n != 0 || err != io.EOF {
		t.Fatalf("Read after the client closed = %d, %v, want 0, EOF", n, err)
	}
}

// TestLeanConnReadAllocs: the small-read path allocates nothing.
func TestLeanConnReadAllocs(t *testing.T) {
	lc, client := tcpPair(t)
	msg := []byte("ping")
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < len(msg) {
			n, err := lc.Read(buf[:1+got%2]) // small reads, through the chunk
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per read round, want 0", allocs)
	}
}

// TestLeanListenerPipelined: fasthttp in ReduceMemoryUsage mode behind a leanListener answers pipelined
// requests (all in one TCP write) in order, and a request split across writes.
func TestLeanListenerPipelined(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		ReduceMemoryUsage: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyString(string(ctx.Path()) + ":" + string(ctx.PostBody()))
		},
	}
	go func() { _ = srv.Serve(leanListener{Listener: ln, yields: new(atomic.Int32)}) }()
	defer srv.Shutdown()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := func(path, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	big := strings.Repeat("b", 3*leanChunkSize)
	if _, err := c.Write([]byte(req("/a", "1") + req("/b", "22") + req("/c", big))); err != nil {
		t.Fatal(err)
	}
	split := req("/d", "4444")
	if _, err := c.Write([]byte(split[:7])); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	for i, want := range []string{"/a:1", "/b:22", "/c:" + big} {
		if err := resp.Read(br); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if string(resp.Body()) != want {
			t.Fatalf("response %d: %.40q, want %.40q", i, resp.Body(), want)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Write([]byte(split[7:])); err != nil {
		t.Fatal(err)
	}
	if err := resp.Read(br); err != nil || string(resp.Body()) != "/d:4444" {
		t.Fatalf("split request: %v %q", err, resp.Body())
	}
}

func itoa(n int) string { return string(fasthttp.AppendUint(nil, n)) }

// TestLeanConnWriteToKeepsChunk: io.Copy from a leanConn (its WriteTo) hands out the chunked bytes first.
func TestLeanConnWriteToKeepsChunk(t *testing.T) {
	lc, client := tcpPair(t)
	if _, err := client.Write([]byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if _, err := lc.Read(one[:]); err != nil || one[0] != 'a' {
		t.Fatalf("Read(1): %q %v", one[:], err)
	}
	go func() { _, _ = client.Write([]byte("ghi")); client.Close() }()
	var out strings.Builder
	if _, err := io.Copy(&out, lc); err != nil {
		t.Fatal(err)
	}
	if out.String() != "bcdefghi" {
		t.Fatalf("copied %q, want %q", out.String(), "bcdefghi")
	}
}

// TestLeanConnYieldBudget: an idle read yields while the budget lasts (counted), not once it is spent,
// and a read woken by the network poller renews the budget.
func TestLeanConnYieldBudget(t *testing.T) {
	lc, client := tcpPair(t)
	var one [1]byte
	lc.yields.Store(0)
	if _, err := client.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the bytes are there: no wait, so no renewal
	if _, err := lc.Read(one[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Read(one[:]); err != nil { // from the chunk: no yield
		t.Fatal(err)
	}
	if got := lc.yields.Load(); got != 1 {
		t.Fatalf("yields after one idle read = %d, want 1", got)
	}
	lc.yields.Store(leanYieldBudget)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = client.Write([]byte("c"))
	}()
	if _, err := lc.Read(one[:]); err != nil || one[0] != 'c' { // budget spent: no yield; waits, is woken
		t.Fatalf("Read: %q %v", one[:], err)
	}
	if got := lc.yields.Load(); got != 0 {
		t.Fatalf("yields after a poller wake-up = %d, want 0 (budget renewed)", got)
	}
}

// countingDeadliner counts the deadlines a lazyDeadline arms.
type countingDeadliner struct {
	armed []time.Time
}

func (c *countingDeadliner) SetReadDeadline(t time.Time) error {
	c.armed = append(c.armed, t)
	return nil
}

// TestLazyDeadlineArmsOnlyEarlier: fasthttp's idle/read alternation re-arms the socket only when a
// deadline earlier than the armed one is asked for; later ones are recorded and left to early.
func TestLazyDeadlineArmsOnlyEarlier(t *testing.T) {
	var d lazyDeadline
	var c countingDeadliner
	now := time.Now()
	idle, read := 120*time.Second, 30*time.Second
	for i := range 1000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		if err := d.set(at.Add(idle), &c); err != nil { // waiting for the next request
			t.Fatal(err)
		}
		if err := d.set(at.Add(read), &c); err != nil { // its first byte came
			t.Fatal(err)
		}
	}
	// The first idle deadline, then the first read deadline (earlier); every later one fires after it.
	if len(c.armed) != 2 || !c.armed[1].Equal(now.Add(read)) {
		t.Fatalf("armed %d deadlines (%v), want 2: the first idle and the first read one", len(c.armed), c.armed)
	}
	if !d.want.Equal(now.Add(999*time.Millisecond + read)) {
		t.Fatalf("want = %v, not the last deadline asked for", d.want)
	}
	// An earlier deadline (an interrupt) is armed at once; removing the deadline is lazy.
	past := now.Add(-time.Second)
	if err := d.set(past, &c); err != nil || len(c.armed) != 3 || !c.armed[2].Equal(past) {
		t.Fatalf("a past deadline: armed %v, err %v", c.armed, err)
	}
	if err := d.set(time.Time{}, &c); err != nil || len(c.armed) != 3 {
		t.Fatalf("no deadline: armed %v, err %v; want nothing re-armed", c.armed, err)
	}
	// The armed (past) deadline fires: early re-arms with the wanted one (none) and the read goes on.
	timeout := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	if !d.early(timeout, &c) || len(c.armed) != 4 || !c.armed[3].IsZero() {
		t.Fatalf("early with no deadline wanted: armed %v", c.armed)
	}
	if d.early(io.EOF, &c) {
		t.Fatal("early(EOF) = true")
	}
	// A wanted deadline that has passed is a real timeout.
	d.want = past
	if d.early(timeout, &c) {
		t.Fatal("early after the wanted deadline = true")
	}
}

// TestLeanConnEarlyDeadlineWaits: the socket keeps an earlier (read-timeout) deadline when a later (idle)
// one is set; when it fires, the read goes on until the later one, and only then times out.
func TestLeanConnEarlyDeadlineWaits(t *testing.T) {
	lc, client := tcpPair(t)
	start := time.Now()
	if err := lc.SetReadDeadline(start.Add(40 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := lc.SetReadDeadline(start.Add(250 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	_, err := lc.Read(one[:])
	if el := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || el < 250*time.Millisecond {
		t.Fatalf("Read = %v after %v, want a timeout at the later deadline (250ms)", err, el)
	}
	// Data that comes after an early wake-up is read.
	if err := lc.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := lc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		client.Write([]byte("x"))
	}()
	if n, err := lc.Read(one[:]); n != 1 || err != nil {
		t.Fatalf("Read after an early wake-up = %d, %v, want the byte", n, err)
	}
	// A deadline in the past set by another goroutine interrupts a read at once.
	if err := lc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		lc.SetReadDeadline(time.Now().Add(-time.Second))
	}()
	start = time.Now()
	if _, err := lc.Read(one[:]); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("Read interrupted by a past deadline = %v after %v", err, time.Since(start))
	}
}

// BenchmarkReadDeadlines: the two read deadlines fasthttp sets per keep-alive request (idle, then read
// timeout), on a lean connection against the plain TCP connection under it.
func BenchmarkReadDeadlines(b *testing.B) {
	lc, _ := tcpPair(b)
	for _, bc := range []struct {
		name string
		c    interface{ SetReadDeadline(time.Time) error }
	}{{"tcp", lc.TCPConn}, {"lean", lc}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				if err := bc.c.SetReadDeadline(now.Add(120 * time.Second)); err != nil {
					b.Fatal(err)
				}
				if err := bc.c.SetReadDeadline(now.Add(30 * time.Second)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestClientTimeoutsE2E: the read and idle timeouts of client connections (lazy deadlines underneath)
// fire when they should, neither early nor late: a keep-alive connection idle after a request is closed
// after idle_timeout, not after the shorter read_timeout still armed from its request; a request whose
// headers never end is cut after read_timeout.
func TestClientTimeoutsE2E(t *testing.T) {
	const readTimeout, idleTimeout = 300 * time.Millisecond, 900 * time.Millisecond
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cfg.Limits.ReadTimeout, cfg.Limits.IdleTimeout = mapping.Duration(readTimeout), mapping.Duration(idleTimeout)
	g := startGateway(t, cfg, Options{})
	g.waitReady()
	closedAfter := func(c net.Conn, br *bufio.Reader) time.Duration {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(10 * time.Second))
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the gateway sent more bytes instead of closing")
		}
		return time.Since(start)
	}

	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for range 3 { // a few requests: the deadlines alternate between idle and read on one socket
		if st := exchange(t, c, br, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if el := closedAfter(c, br); el < idleTimeout-100*time.Millisecond || el > idleTimeout+3*time.Second {
		t.Fatalf("idle keep-alive connection closed after %v, want about idle_timeout %v (read_timeout %v)", el, idleTimeout, readTimeout)
	}

	c2, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "GET /api/users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	br2 := bufio.NewReader(c2)
	start := time.Now()
	_ = c2.SetReadDeadline(start.Add(10 * time.Second))
	resp, err := http.ReadResponse(br2, nil)
	el := time.Since(start)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("unfinished headers: status %d, want 408 or a close", resp.StatusCode)
		}
	}
	if el < readTimeout-100*time.Millisecond || el > readTimeout+3*time.Second {
		t.Fatalf("unfinished headers answered or cut after %v, want about read_timeout %v", el, readTimeout)
	}
}
