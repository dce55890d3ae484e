package ingress

import (
	"context"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// sessionIDRe matches the session part of a resumable SSE event id.
var sessionIDRe = regexp.MustCompile(`(?m)^id: ([0-9a-f]{32})-`)

// stripSessionIDs removes the session part of resumable SSE ids ("id: <32 hex>-7" -> "id: 7"), after
// checking that every event of the body carries the same session.
func stripSessionIDs(t *testing.T, body string) string {
	t.Helper()
	var session string
	for _, m := range sessionIDRe.FindAllStringSubmatch(body, -1) {
		if session == "" {
			session = m[1]
		} else if m[1] != session {
			t.Fatalf("two sessions (%s, %s) in one stream: %q", session, m[1], body)
		}
	}
	return sessionIDRe.ReplaceAllString(body, "id: ")
}

// flowBackend serves request-streams that follow the credit they are given:
//
//	stall.{k}   k items ({"n":i}), then nothing (credit outstanding) until CANCEL
//	small.{n}   n items {"n":i}, then complete
//	seq.{n}     n items of about 8 KiB ({"n":i,"pad":"..."}), then complete
//	endless     items until CANCEL
//
// It counts items sent and reports CANCELs.
type flowBackend struct {
	sent     atomic.Int64
	canceled chan string
}

func newFlowBackend(t *testing.T) (*flowBackend, *rsocketBackend) {
	fb := &flowBackend{canceled: make(chan string, 16)}
	return fb, startBackend(t, fb.handler)
}

var pad = strings.Repeat("p", 8000)

func flowItem(i int) []byte { return []byte(`{"n":` + strconv.Itoa(i) + `,"pad":"` + pad + `"}`) }

func (fb *flowBackend) handler() rsocket.Handler {
	return &rsocket.HandlerFuncs{
		RequestStreamFunc: func(req rsocket.Payload, n uint32, s *rsocket.Stream) {
			tag := firstTag(req.Metadata)
			send := func(i int) bool {
				if s.Send(context.Background(), rsocket.Payload{Data: flowItem(i)}) != nil {
					fb.canceled <- tag
					return false
				}
				fb.sent.Add(1)
				return true
			}
			switch {
			case strings.HasPrefix(tag, "stall."):
				k, _ := strconv.Atoi(tag[len("stall."):])
				go func() {
					for i := 0; i < k; i++ {
						if !send(i) {
							return
						}
					}
					<-s.Done()
					fb.canceled <- tag
				}()
			case strings.HasPrefix(tag, "small."):
				k, _ := strconv.Atoi(tag[len("small."):])
				go func() {
					for i := 0; i < k; i++ {
						if s.Send(context.Background(), rsocket.Payload{Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)}) != nil {
							fb.canceled <- tag
							return
						}
						fb.sent.Add(1)
					}
					_ = s.Complete()
				}()
			case strings.HasPrefix(tag, "seq."):
				k, _ := strconv.Atoi(tag[len("seq."):])
				go func() {
					for i := 0; i < k; i++ {
						if !send(i) {
							return
						}
					}
					_ = s.Complete()
				}()
			case tag == "endless":
				go func() {
					for i := 0; send(i); i++ {
					}
				}()
			default:
				_ = s.Error(frame.CodeInvalid, "no stream "+tag)
			}
		},
	}
}

func (fb *flowBackend) expectCanceled(t *testing.T, tag string) {
	t.Helper()
	select {
	case got := <-fb.canceled:
		if got != tag {
			t.Fatalf("canceled %q, want %q", got, tag)
		}
	case <-time.After(testTimeout):
		t.Fatalf("the backend saw no CANCEL for %s", tag)
	}
}

func flowRoute(name, path, tag string, mutate func(*mapping.StreamConfig)) routeSpec {
	return routeSpec{name: name, path: path, backend: "fb", interaction: mapping.InteractionRequestStream, tag: tag,
		mutate: func(r *mapping.Route) {
			if mutate != nil {
				mutate(&r.Stream)
			}
		}}
}

// TestStreamIdleTimeout: a backend that sends 3 items and then nothing with credit outstanding: after
// stream.idle_timeout the client gets the STREAM_IDLE error event (SSE and NDJSON) and the backend CANCEL.
func TestStreamIdleTimeout(t *testing.T) {
	fb, b := newFlowBackend(t)
	idle := func(s *mapping.StreamConfig) { s.Window, s.IdleTimeout = 8, mapping.Duration(150*time.Millisecond) }
	g := startGateway(t, newConfig(map[string]string{"fb": b.addr}, []routeSpec{
		flowRoute("stall", "/stall/{k}", "stall.{k}", idle),
	}), Options{})
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			start := time.Now()
			_, r := openStream(t, g.addr, "/stall/3", accept, false)
			var lines []string
			for {
				l, err := r.line()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %q: %v", lines, err)
				}
				if l != "" && !strings.HasPrefix(l, "id: ") {
					lines = append(lines, l)
				}
			}
			want := `{"error":"the backend sent no item for 150ms with credit outstanding","code":"STREAM_IDLE"}`
			wantLines := []string{`{"n":0,`, `{"n":1,`, `{"n":2,`, want}
			if accept == "text/event-stream" {
				wantLines = []string{`data: {"n":0,`, `data: {"n":1,`, `data: {"n":2,`, "event: error", "data: " + want}
			}
			if len(lines) != len(wantLines) {
				t.Fatalf("lines %q, want 3 items and the error", lines)
			}
			for i, w := range wantLines {
				if !strings.HasPrefix(lines[i], w) {
					t.Fatalf("line %d: %q, want %q", i, lines[i], w)
				}
			}
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Fatalf("ended after %v, before the idle timeout", d)
			}
			fb.expectCanceled(t, "stall.3")
			testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "the stream to be released")
		})
	}
	if got := g.set.GetOrCreateCounter(`rsgate_stream_idle_timeouts_total{route="stall"}`).Get(); got != 2 {
		t.Fatalf("rsgate_stream_idle_timeouts_total = %d, want 2", got)
	}
}

// TestStreamIdleSlowClient: a client that stops reading for many idle timeouts (no credit outstanding: the
// backend sent all it was granted) is not cut off, and reads on afterwards.
func TestStreamIdleSlowClient(t *testing.T) {
	_, b := newFlowBackend(t)
	g := startGatewayListener(t, newConfig(map[string]string{"fb": b.addr}, []routeSpec{
		flowRoute("endless", "/endless", "endless", func(s *mapping.StreamConfig) {
			s.Window, s.IdleTimeout, s.ResumeWindow = 8, mapping.Duration(60*time.Millisecond), 0
		}),
	}), Options{}, func(l net.Listener) net.Listener { return smallBufListener{l} })
	_, r := openStream(t, g.addr, "/endless", "application/x-ndjson", true)
	read := func(n int) {
		for i := 0; i < n; i++ {
			l, err := r.line()
			if err != nil || !strings.HasPrefix(l, `{"n":`) {
				t.Fatalf("line %q, %v", l, err)
			}
		}
	}
	for round := 0; round < 3; round++ {
		read(30)
		time.Sleep(400 * time.Millisecond) // the client pauses: > 6 idle timeouts
	}
	read(30)
}

// TestStreamIdleOff: with idle_timeout 0 a stalled backend keeps the stream open.
func TestStreamIdleOff(t *testing.T) {
	fb, b := newFlowBackend(t)
	g := startGateway(t, newConfig(map[string]string{"fb": b.addr}, []routeSpec{
		flowRoute("stall", "/stall/{k}", "stall.{k}", func(s *mapping.StreamConfig) { s.IdleTimeout = 0 }),
	}), Options{})
	conn, r := openStream(t, g.addr, "/stall/2", "application/x-ndjson", false)
	for i := 0; i < 2; i++ {
		if _, err := r.line(); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if l, err := r.line(); err == nil {
		t.Fatalf("stalled stream without idle timeout wrote %q", l)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read: %v, want a timeout (stream still open)", err)
	}
	_ = conn.Close()
	fb.expectCanceled(t, "stall.2")
}

// TestShutdownSlowStreamReader: a stream whose client reads slowly when the grace period ends gets the
// SHUTTING_DOWN error line and a complete body (not a truncated one), and Shutdown ends within
// shutdown_grace plus forceCloseWait.
func TestShutdownSlowStreamReader(t *testing.T) {
	sp := newSpecial()
	sp.itemSize.Store(16 << 10)
	b := startBackend(t, sp.handler)
	g := startGatewayListener(t, newConfig(map[string]string{"sp": b.addr}, specialRoutes()), Options{},
		func(l net.Listener) net.Listener { return smallBufListener{l} })
	_, r := openStream(t, g.addr, "/endless", "application/x-ndjson", true)
	type end struct {
		items int
		last  string
		err   error
	}
	ended := make(chan end, 1)
	go func() {
		var e end
		for {
			l, err := r.line()
			if err != nil {
				e.err = err
				ended <- e
				return
			}
			if strings.HasPrefix(l, "xxxx") {
				e.items++
				time.Sleep(3 * time.Millisecond) // a slow reader: about 5 MB/s
			} else {
				e.last = l
			}
		}
	}()
	testutil.Eventually(t, func() bool { return sp.emitted.Load() > 20 }, "the stream to run")
	const grace = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	err := g.srv.Shutdown(ctx)
	took := time.Since(start)
	if err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	e := <-ended
	t.Logf("Shutdown took %v; the client read %d items, then %q, %v", took, e.items, e.last, e.err)
	if e.err != io.EOF || !r.done {
		t.Fatalf("body ended with %v after %q (truncated), want the end of the chunked body", e.err, e.last)
	}
	if want := `{"error":"gateway shutting down","code":"SHUTTING_DOWN"}`; e.last != want {
		t.Fatalf("last line %q, want %q", e.last, want)
	}
	if limit := grace + forceCloseWait + time.Second; took > limit { // generous: a busy machine
		t.Fatalf("Shutdown took %v, more than the grace period plus %v", took, limit-grace)
	}
	sp.expectCanceled(t, "endless", "backend stream not canceled at shutdown")
}
