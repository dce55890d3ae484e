//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection; the server end is wrapped in a Conn.
func tcpPair(t *testing.T) (*Conn, *net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.(*net.TCPConn)
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { srv.Close(); peer.Close() })
	c, err := NewConn(srv)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv, peer.(*net.TCPConn)
}

// pattern is n bytes that tell their position apart.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + seed) % 251)
	}
	return b
}

// readSlowly reads n bytes from r slowly (small reads with pauses), so the writer meets a full
// socket buffer and short writes.
func readSlowly(t *testing.T, r io.Reader, n int, out chan<- []byte) {
	got := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(got) < n {
		k, err := r.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			break
		}
		if len(got)%(256<<10) < 4096 {
			time.Sleep(time.Millisecond)
		}
	}
	out <- got
}

// Writev of more bytes than the socket buffers hold: writev(2) writes part of them (a short write, often
// in the middle of a buffer), the rest goes out as the peer reads, in order.
func TestWritevPartialWrites(t *testing.T) {
	c, srv, peer := tcpPair(t)
	_ = srv.SetWriteBuffer(16 << 10)
	_ = peer.SetReadBuffer(16 << 10)
	var bufs [][]byte
	var want []byte
	for i := 0; i < 64; i++ {
		b := pattern(33<<10+i, i) // odd sizes: short writes land inside buffers
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	out := make(chan []byte, 1)
	go readSlowly(t, peer, len(want), out)
	n, err := c.Writev(bufs)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Writev: %d of %d, %v", n, len(want), err)
	}
	for i, b := range bufs {
		if len(b) != 0 {
			t.Fatalf("buffer %d still has %d bytes", i, len(b))
		}
	}
	if got := <-out; !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
	}
}

// More buffers than one writev(2) takes (IOV_MAX): they go out in several calls, in order, and empty
// buffers among them are skipped.
func TestWritevMoreThanIOVMax(t *testing.T) {
	c, _, peer := tcpPair(t)
	const count = 3*MaxIovecs + 17
	bufs := make([][]byte, count)
	var want []byte
	for i := range bufs {
		if i%100 == 0 {
			bufs[i] = []byte{} // empty entries are skipped
			continue
		}
		bufs[i] = pattern(1+i%13, i)
		want = append(want, bufs[i]...)
	}
	out := make(chan []byte, 1)
	go readSlowly(t, peer, len(want), out)
	n, err := c.Writev(bufs)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Writev of %d buffers: %d of %d bytes, %v", count, n, len(want), err)
	}
	if got := <-out; !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes, want %d", len(got), len(want))
	}
	if len(c.iov) != 0 {
		t.Fatalf("iovec scratch not reset: %d entries", len(c.iov))
	}
}

// The raw calls report EAGAIN on a non-blocking socket that has nothing to read or no room to write,
// instead of blocking or losing bytes.
func TestRawCallsEAGAIN(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	a, b := uintptr(fds[0]), uintptr(fds[1])
	buf := make([]byte, 64<<10)
	if n, errno := Read(a, buf); errno != syscall.EAGAIN || n != 0 {
		t.Fatalf("Read on an empty socket: %d, %v; want EAGAIN", n, errno)
	}
	// Fill the socket until the kernel refuses more.
	total := 0
	for {
		n, errno := Write(b, buf)
		if errno == syscall.EAGAIN {
			break
		}
		if errno != 0 {
			t.Fatalf("Write: %v", errno)
		}
		total += n
		if total > 64<<20 {
			t.Fatal("the socket never filled")
		}
	}
	iov := []syscall.Iovec{{Base: &buf[0]}, {Base: &buf[1]}}
	iov[0].SetLen(1)
	iov[1].SetLen(1)
	if n, errno := Writev(b, iov); errno != syscall.EAGAIN || n != 0 {
		t.Fatalf("Writev on a full socket: %d, %v; want EAGAIN", n, errno)
	}
	// Everything written is readable, then EAGAIN again.
	read := 0
	for {
		n, errno := Read(a, buf)
		if errno == syscall.EAGAIN {
			break
		}
		if errno != 0 {
			t.Fatalf("Read: %v", errno)
		}
		read += n
	}
	if read != total {
		t.Fatalf("read %d of %d bytes", read, total)
	}
	if n, errno := Read(a, nil); n != 0 || errno != 0 {
		t.Fatalf("Read of nothing: %d %v", n, errno)
	}
}

// Conn.Read waits for readability when the socket is empty (EAGAIN is not an error) and says it waited;
// ReadPooled gives its buffer back while it waits.
func TestReadWaitsAndPooledBuffers(t *testing.T) {
	c, _, peer := tcpPair(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("hello"))
	}()
	p := make([]byte, 16)
	n, err := c.Read(p)
	if err != nil || string(p[:n]) != "hello" || !c.Waited() {
		t.Fatalf("Read: %q %v waited=%v", p[:n], err, c.Waited())
	}
	pool := &sync.Pool{New: func() any { b := make([]byte, 8); return &b }}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("pooled"))
	}()
	b, n, err := c.ReadPooled(pool)
	if err != nil || string((*b)[:n]) != "pooled" {
		t.Fatalf("ReadPooled: %v", err)
	}
	if !c.Waited() {
		t.Fatal("ReadPooled did not wait")
	}
}

// The peer closing: reads end with io.EOF; writes fail with EPIPE or ECONNRESET as a *net.OpError.
// A Conn used after Close fails with net.ErrClosed. A read deadline ends a waiting read.
func TestClosedSockets(t *testing.T) {
	c, srv, peer := tcpPair(t)
	_ = peer.Close()
	if n, err := c.Read(make([]byte, 8)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the peer closed: %d %v; want EOF", n, err)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ { // the first writes may still be accepted by the kernel
		_, werr = c.Writev([][]byte{pattern(64<<10, i), pattern(100, i)})
		if werr == nil {
			time.Sleep(time.Millisecond)
		}
	}
	var oe *net.OpError
	if !errors.As(werr, &oe) || oe.Op != "write" || !(errors.Is(werr, syscall.EPIPE) || errors.Is(werr, syscall.ECONNRESET)) {
		t.Fatalf("Writev to a closed peer: %v", werr)
	}
	_ = srv.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}

	c2, srv2, _ := tcpPair(t)
	_ = srv2.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c2.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	if _, _, err := c2.ReadPooled(&sync.Pool{New: func() any { b := make([]byte, 8); return &b }}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadPooled past its deadline: %v", err)
	}
}
