package ingress

import (
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// rawRSocket is a hand-driven RSocket-over-WebSocket client: it can send what a real client would not.
type rawRSocket struct {
	t         *testing.T
	ws        *websocket.Conn
	skipItems bool // next skips stream items (PAYLOAD without C)
}

func dialRawRSocket(t *testing.T, g *gateway) *rawRSocket {
	t.Helper()
	ws := dialWS(t, wsURL(g, "/rsocket"), nil)
	r := &rawRSocket{t: t, ws: ws}
	r.send(frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 600000,
		MetadataMIME: extension.MimeComposite, DataMIME: "application/json"}, nil, nil))
	return r
}

func (r *rawRSocket) send(b []byte) {
	r.t.Helper()
	if err := r.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		r.t.Fatal(err)
	}
}

// next reads frames until one on stream id that is not a PAYLOAD without C (stream items), and returns it.
func (r *rawRSocket) next(id uint32) frame.Frame {
	r.t.Helper()
	_ = r.ws.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		_, msg, err := r.ws.ReadMessage()
		if err != nil {
			r.t.Fatalf("waiting for a frame on stream %d: %v", id, err)
		}
		f, err := frame.Parse(msg)
		if err != nil {
			r.t.Fatalf("bad frame from the gateway: %v", err)
		}
		if f.StreamID() != id || f.Type() == frame.TypeKeepalive {
			continue
		}
		if f.Type() == frame.TypePayload && !f.Has(frame.FlagComplete) && id != 0 && f.StreamID() == id && r.skipItems {
			continue
		}
		return f
	}
}

func (r *rawRSocket) echo(id uint32, data string) {
	r.t.Helper()
	r.send(frame.AppendRequestResponse(nil, id, false, routeMD("echo"), []byte(data)))
	f := r.next(id)
	if f.Type() != frame.TypePayload || string(f.Data()) != data {
		r.t.Fatalf("echo on stream %d: %v, want a PAYLOAD %q", id, f, data)
	}
}

// closed waits for the gateway to end the WebSocket.
func (r *rawRSocket) closed() {
	r.t.Helper()
	_ = r.ws.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		if _, _, err := r.ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				r.t.Fatal("the connection stayed open")
			}
			return
		}
	}
}

func TestWSRSocketProtocolStrictness(t *testing.T) {
	d := startDemo(t)
	g := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, nil)
	violations := func(kind string) uint64 {
		return g.set.GetOrCreateCounter(`rsgate_rsocket_protocol_violations_total{route="rs",kind="` + kind + `"}`).Get()
	}

	for _, tc := range []struct {
		name string
		id   uint32
		kind string
	}{
		{"request-on-stream-0", 0, "stream_zero"},
		{"even-stream-id", 2, "even_stream_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRawRSocket(t, g)
			r.echo(1, `"before"`)
			r.send(frame.AppendRequestResponse(nil, tc.id, false, routeMD("echo"), []byte(`"x"`)))
			f := r.next(0)
			if f.Type() != frame.TypeError || f.ErrorCode() != frame.CodeConnectionError {
				t.Fatalf("got %v, want ERROR[CONNECTION_ERROR] on stream 0", f)
			}
			t.Logf("answer: %s", f.ErrorMessage())
			r.closed()
			if violations(tc.kind) != 1 {
				t.Errorf("violations{kind=%s} = %d, want 1", tc.kind, violations(tc.kind))
			}
		})
	}

	t.Run("stream-id-in-use", func(t *testing.T) {
		r := dialRawRSocket(t, g)
		// An endless stream on id 1 with credit for one item: it stays open.
		r.send(frame.AppendRequestStream(nil, 1, 1, false, routeMD("clock.50"), nil))
		if f := r.next(1); f.Type() != frame.TypePayload {
			t.Fatalf("first item: %v", f)
		}
		r.skipItems = true
		r.send(frame.AppendRequestResponse(nil, 1, false, routeMD("echo"), []byte(`"again"`)))
		f := r.next(1)
		if f.Type() != frame.TypeError || f.ErrorCode() != frame.CodeRejected {
			t.Fatalf("got %v, want ERROR[REJECTED] on stream 1", f)
		}
		if violations("stream_in_use") != 1 {
			t.Errorf("stream_in_use not counted")
		}
		// The connection goes on; id 1 has ended (a new request on it would be a reuse, so use 3).
		r.skipItems = false
		r.echo(3, `"after"`)
		testutil.Eventually(t, func() bool {
			for _, st := range g.pools.Stats() {
				if st.InFlight != 0 {
					return false
				}
			}
			return true
		}, "the backend stream to be released")

	})

	t.Run("second-setup-ignored", func(t *testing.T) {
		r := dialRawRSocket(t, g)
		r.echo(1, `"one"`)
		r.send(frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 1000, Lifetime: 5000,
			MetadataMIME: extension.MimeRouting, DataMIME: "text/plain"}, nil, nil))
		r.echo(3, `"two"`) // still composite metadata, still served
		if violations("second_setup") != 1 {
			t.Errorf("second_setup not counted")
		}
	})
}

// frameHead against literal wire bytes (Protocol.md "Frame Header Format").
func TestFrameHeadGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    string
		t    frame.Type
		id   uint32
		ok   bool
	}{
		{"request-response on 1", "\x00\x00\x00\x01\x10\x00", frame.TypeRequestResponse, 1, true},
		{"request-stream on 2, M flag", "\x00\x00\x00\x02\x19\x00", frame.TypeRequestStream, 2, true},
		{"reserved bit ignored", "\x80\x00\x00\x00\x1c\x00", frame.TypeRequestChannel, 0, true},
		{"setup on 0", "\x00\x00\x00\x00\x04\x00", frame.TypeSetup, 0, true},
		{"max id, FNF", "\x7f\xff\xff\xff\x14\x00", frame.TypeRequestFNF, 1<<31 - 1, true},
		{"short", "\x00\x00\x00\x01\x10", 0, 0, false},
	} {
		gt, gid, gok := frameHead([]byte(tc.b))
		if gt != tc.t || gid != tc.id || gok != tc.ok {
			t.Errorf("%s: %v %d %v, want %v %d %v", tc.name, gt, gid, gok, tc.t, tc.id, tc.ok)
		}
	}
}

// FuzzFrameHead: frameHead agrees with the frame codec on every frame the codec accepts, and never
// panics.
func FuzzFrameHead(f *testing.F) {
	f.Add(frame.AppendRequestResponse(nil, 1, false, routeMD("echo"), []byte(`"x"`)))
	f.Add(frame.AppendRequestStream(nil, 2, 5, false, nil, nil))
	f.Add(frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 1, Lifetime: 2, MetadataMIME: "a", DataMIME: "b"}, nil, nil))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, id, ok := frameHead(b)
		if !ok {
			if len(b) >= frame.HeaderLen {
				t.Fatal("a whole header not read")
			}
			return
		}
		if fr, err := frame.Parse(b); err == nil && (fr.Type() != ft || fr.StreamID() != id) {
			t.Fatalf("frameHead %v/%d, codec %v/%d", ft, id, fr.Type(), fr.StreamID())
		}
	})
}
