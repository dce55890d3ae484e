package ingress

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// openSSE sends GET path with Accept: text/event-stream and, when lastID is set, Last-Event-ID. It returns
// the connection, the status code and a reader positioned at the body. The connection has a small receive
// buffer: with startResumeGateway's small send buffers, what is in flight when the client goes away stays
// within the replay ring (the last window items written). hdr adds request headers (name, value, ...).
func openSSE(t *testing.T, addr, path, lastID string, hdr ...string) (net.Conn, int, *sseReader) {
	t.Helper()
	c := dialSmall(t, addr)
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := &sseReader{t: t, br: bufio.NewReaderSize(c, 512)}
	status, err := r.br.ReadString('\n')
	if err != nil || len(status) < 12 {
		t.Fatalf("status line %q: %v", status, err)
	}
	code, _ := strconv.Atoi(status[9:12])
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	return c, code, r
}

// sseItem is one event of a flowBackend stream: its id and the item number.
type sseItem struct {
	session string
	seq     int
	n       int
}

func readItem(t *testing.T, r *sseReader) (sseItem, error) {
	t.Helper()
	id, data, err := r.event()
	if err != nil {
		return sseItem{}, err
	}
	session, seq, ok := strings.Cut(id, "-")
	if !ok || len(session) != 32 {
		t.Fatalf("event id %q is not <session>-<seq>", id)
	}
	var it sseItem
	it.session = session
	if it.seq, err = strconv.Atoi(seq); err != nil {
		t.Fatalf("event id %q: %v", id, err)
	}
	var v struct{ N int }
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("event data %q: %v", data, err)
	}
	it.n = v.N
	return it, nil
}

// startResumeGateway starts a gateway in front of a flowBackend with resumeRoutes, small socket buffers on
// the client side of the gateway and limits.max_parked_streams maxParked.
func startResumeGateway(t *testing.T, window int, resume time.Duration, maxParked int) (*flowBackend, *gateway) {
	fb, b := newFlowBackend(t)
	cfg := newConfig(map[string]string{"fb": b.addr}, resumeRoutes(window, resume))
	cfg.Limits.MaxParkedStreams = maxParked
	g := startGatewayListener(t, cfg, Options{}, func(l net.Listener) net.Listener { return smallBufListener{l} })
	return fb, g
}

func resumeRoutes(window int, resume time.Duration) []routeSpec {
	set := func(expired string) func(*mapping.StreamConfig) {
		return func(s *mapping.StreamConfig) {
			s.Window, s.ResumeWindow, s.ResumeExpired = window, mapping.Duration(resume), expired
		}
	}
	return []routeSpec{
		flowRoute("seq", "/seq/{n}", "seq.{n}", set(mapping.ResumeExpiredNew)),
		flowRoute("seq-gone", "/seq-gone/{n}", "seq.{n}", set(mapping.ResumeExpiredGone)),
		flowRoute("endless", "/endless", "endless", set(mapping.ResumeExpiredNew)),
	}
}

// TestSSEResume: a client reads part of a stream, disconnects, reconnects with Last-Event-ID and receives
// the rest exactly once, in order, with ids of the same session; then the stream completes.
func TestSSEResume(t *testing.T) {
	_, g := startResumeGateway(t, 64, 10*time.Second, 16)
	const total = 300
	next, lastID, session := 0, "", ""
	for part := 0; part < 4; part++ {
		conn, status, r := openSSE(t, g.addr, "/seq/"+strconv.Itoa(total), lastID)
		if status != 200 {
			t.Fatalf("part %d: status %d", part, status)
		}
		stop := next + 40 // read 40 items, then go away (the last part reads to the end)
		for part == 3 || next < stop {
			it, err := readItem(t, r)
			if err == io.EOF && part == 3 {
				break
			}
			if err != nil {
				t.Fatalf("part %d after item %d: %v", part, next-1, err)
			}
			if session == "" {
				session = it.session
			}
			if it.session != session || it.n != next || it.seq != next+1 {
				t.Fatalf("part %d: got item %d (id %s-%d), want item %d (id %s-%d)", part, it.n, it.session, it.seq, next, session, next+1)
			}
			next++
			lastID = session + "-" + strconv.Itoa(it.seq)
		}
		if part < 3 {
			_ = conn.Close()
			testutil.Eventually(t, func() bool { return g.srv.resume.Parked() == 1 }, "the stream to be parked")
		}
	}
	if next != total {
		t.Fatalf("received %d items, want %d", next, total)
	}
	if got := g.set.GetOrCreateCounter("rsgate_stream_resumed_total").Get(); got != 3 {
		t.Fatalf("rsgate_stream_resumed_total = %d, want 3", got)
	}
	// The stream ended; an EventSource reconnects with the last id and gets 204: it has everything.
	if _, status, _ := openSSE(t, g.addr, "/seq/"+strconv.Itoa(total), lastID); status != 204 {
		t.Fatalf("reconnect after the end: status %d, want 204", status)
	}
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 && g.srv.resume.Parked() == 0 }, "the stream to end")
}

// TestSSEResumeFastStream: a short stream of small items (default window and socket buffers) is written
// out completely before the client, which read 10 items, goes away; the client reconnects with
// Last-Event-ID and gets items 10..99 exactly once, then the end; a reconnect with the last id gets 204.
func TestSSEResumeFastStream(t *testing.T) {
	_, b := newFlowBackend(t)
	g := startGateway(t, newConfig(map[string]string{"fb": b.addr}, []routeSpec{
		flowRoute("small", "/small/{n}", "small.{n}", nil),
	}), Options{})
	conn, _, r := openSSE(t, g.addr, "/small/100", "")
	var last sseItem
	for i := 0; i < 10; i++ {
		var err error
		if last, err = readItem(t, r); err != nil || last.n != i {
			t.Fatalf("item %d: %+v, %v", i, last, err)
		}
	}
	_ = conn.Close()
	testutil.Eventually(t, func() bool { return g.srv.resume.Parked() == 1 }, "the stream to be parked")
	lastID := last.session + "-" + strconv.Itoa(last.seq)
	_, status, r2 := openSSE(t, g.addr, "/small/100", lastID)
	if status != 200 {
		t.Fatalf("resume: status %d", status)
	}
	for want := 10; ; want++ {
		it, err := readItem(t, r2)
		if err == io.EOF {
			if want != 100 {
				t.Fatalf("ended after item %d", want-1)
			}
			break
		}
		if err != nil || it.n != want || it.session != last.session || it.seq != want+1 {
			t.Fatalf("item %+v, %v; want %d of session %s", it, err, want, last.session)
		}
		lastID = it.session + "-" + strconv.Itoa(it.seq)
	}
	if _, status, _ := openSSE(t, g.addr, "/small/100", lastID); status != 204 {
		t.Fatalf("reconnect after the end: status %d, want 204", status)
	}
	if n := g.srv.resume.Parked(); n != 0 {
		t.Fatalf("%d parked", n)
	}
}

// TestSSEResumeTakeover: a reconnect that arrives while the gateway still serves the old connection takes
// the stream over from it.
func TestSSEResumeTakeover(t *testing.T) {
	_, g := startResumeGateway(t, 64, 10*time.Second, 16)
	_, _, r := openSSE(t, g.addr, "/seq/100", "")
	var last sseItem
	for i := 0; i < 10; i++ {
		it, err := readItem(t, r)
		if err != nil {
			t.Fatal(err)
		}
		last = it
	}
	// The first connection stays open (a half-open connection the gateway cannot see is gone).
	_, status, r2 := openSSE(t, g.addr, "/seq/100", last.session+"-"+strconv.Itoa(last.seq))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for want := 10; ; want++ {
		it, err := readItem(t, r2)
		if err == io.EOF {
			if want != 100 {
				t.Fatalf("ended after item %d", want-1)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.n != want || it.session != last.session {
			t.Fatalf("item %d (session %s), want %d (session %s)", it.n, it.session, want, last.session)
		}
	}
}

// TestSSEResumeUnknownID: a Last-Event-ID that names no parked stream (another session, a malformed id)
// starts a new stream, or gets 410 STREAM_EXPIRED on a route with resume_expired: gone.
func TestSSEResumeUnknownID(t *testing.T) {
	_, g := startResumeGateway(t, 64, 10*time.Second, 16)
	for _, id := range []string{"0123456789abcdef0123456789abcdef-5", "42", "zz"} {
		_, status, r := openSSE(t, g.addr, "/seq/3", id)
		if status != 200 {
			t.Fatalf("id %q: status %d", id, status)
		}
		it, err := readItem(t, r)
		if err != nil || it.n != 0 || it.seq != 1 || strings.HasPrefix(id, it.session) {
			t.Fatalf("id %q: first event %+v, %v; want a new stream", id, it, err)
		}
		_, status, _ = openSSE(t, g.addr, "/seq-gone/3", id)
		if status != 410 {
			t.Fatalf("id %q on resume_expired: gone: status %d, want 410", id, status)
		}
	}
	r := g.do("GET", "/seq-gone/3", "", "Accept", "text/event-stream", "Last-Event-ID", "0123456789abcdef0123456789abcdef-5")
	jsonError(t, r, 410, CodeStreamExpired)
	// An id of another route's stream is unknown on this one.
	_, _, rs := openSSE(t, g.addr, "/seq/50", "")
	it, err := readItem(t, rs)
	if err != nil {
		t.Fatal(err)
	}
	jsonError(t, g.do("GET", "/seq-gone/50", "", "Accept", "text/event-stream", "Last-Event-ID", it.session+"-1"), 410, CodeStreamExpired)
}

// TestSSEResumeExpired: after resume_window a parked stream ends (the backend sees CANCEL); its id then
// starts a new stream, or gets 410.
func TestSSEResumeExpired(t *testing.T) {
	fb, g := startResumeGateway(t, 8, 100*time.Millisecond, 16)
	for _, path := range []string{"/seq/1000", "/seq-gone/1000"} {
		conn, _, r := openSSE(t, g.addr, path, "")
		it, err := readItem(t, r)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
		fb.expectCanceled(t, "seq.1000") // parked, then expired
		if n := g.srv.resume.Parked(); n != 0 {
			t.Fatalf("%d parked after the window", n)
		}
		_, status, r2 := openSSE(t, g.addr, path, it.session+"-1")
		if path == "/seq-gone/1000" {
			if status != 410 {
				t.Fatalf("status %d, want 410", status)
			}
			continue
		}
		it2, err := readItem(t, r2)
		if status != 200 || err != nil || it2.session == it.session || it2.n != 0 {
			t.Fatalf("expired id: status %d, first event %+v, %v; want a new stream", status, it2, err)
		}
	}
	if got := g.set.GetOrCreateCounter("rsgate_stream_parked_expired_total").Get(); got != 2 {
		t.Fatalf("rsgate_stream_parked_expired_total = %d, want 2", got)
	}
}

// TestSSEParkedNoCredit: a parked stream grants the backend no new credit: the backend sends what it was
// granted and no more until the client resumes.
func TestSSEParkedNoCredit(t *testing.T) {
	fb, g := startResumeGateway(t, 64, 10*time.Second, 16)
	conn, _, r := openSSE(t, g.addr, "/endless", "")
	var last sseItem
	for i := 0; i < 20; i++ {
		var err error
		if last, err = readItem(t, r); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close()
	testutil.Eventually(t, func() bool { return g.srv.resume.Parked() == 1 }, "the stream to be parked")
	var sr *streamer
	g.srv.resume.mu.Lock()
	for _, s := range g.srv.resume.sessions {
		sr = s
	}
	g.srv.resume.mu.Unlock()
	credit := func() uint64 {
		sr.mu.Lock()
		defer sr.mu.Unlock()
		return sr.granted
	}
	granted := credit()
	// The backend uses up the credit it holds, then stops.
	testutil.Eventually(t, func() bool { return uint64(fb.sent.Load()) == granted }, "the backend to use its credit")
	time.Sleep(200 * time.Millisecond)
	if got := credit(); got != granted {
		t.Fatalf("credit granted while parked: %d -> %d", granted, got)
	}
	if sent := fb.sent.Load(); uint64(sent) != granted {
		t.Fatalf("backend sent %d items with %d granted", sent, granted)
	}
	// Resumed, the stream continues with the next item and credit flows again.
	_, _, r2 := openSSE(t, g.addr, "/endless", last.session+"-"+strconv.Itoa(last.seq))
	for want := last.n + 1; want < int(granted)+20; want++ {
		it, err := readItem(t, r2)
		if err != nil || it.n != want {
			t.Fatalf("after resume: item %+v, %v; want %d", it, err, want)
		}
	}
}

// TestSSEParkedCap: limits.max_parked_streams bounds parked streams; beyond it a stream whose client goes
// away ends at once.
func TestSSEParkedCap(t *testing.T) {
	fb, g := startResumeGateway(t, 8, 10*time.Second, 1)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		conn, _, r := openSSE(t, g.addr, "/endless", "")
		if _, err := readItem(t, r); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	_ = conns[0].Close()
	testutil.Eventually(t, func() bool { return g.srv.resume.Parked() == 1 }, "the first stream to be parked")
	_ = conns[1].Close()
	fb.expectCanceled(t, "endless")
	if n := g.srv.resume.Parked(); n != 1 {
		t.Fatalf("%d parked, want 1", n)
	}
	if got := g.set.GetOrCreateCounter("rsgate_stream_park_refused_total").Get(); got != 1 {
		t.Fatalf("rsgate_stream_park_refused_total = %d", got)
	}
	if got := g.set.GetOrCreateGauge("rsgate_stream_parked", nil).Get(); got != 1 {
		t.Fatalf("rsgate_stream_parked = %v", got)
	}
}

// TestSSEResumeShutdown: Shutdown ends parked streams (CANCEL upstream) at once.
func TestSSEResumeShutdown(t *testing.T) {
	fb, g := startResumeGateway(t, 8, time.Minute, 16)
	conn, _, r := openSSE(t, g.addr, "/endless", "")
	if _, err := readItem(t, r); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	testutil.Eventually(t, func() bool { return g.srv.resume.Parked() == 1 }, "the stream to be parked")
	if err := g.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	fb.expectCanceled(t, "endless")
	if n := g.srv.resume.Parked(); n != 0 {
		t.Fatalf("%d parked after Shutdown", n)
	}
}
