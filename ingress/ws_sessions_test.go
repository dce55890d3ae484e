package ingress

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// websocket.max_sessions: the upgrade over the limit gets 503 TOO_MANY_SESSIONS (JSON, Retry-After); a
// session that ends frees its slot. Both WebSocket interactions.
func TestWSMaxSessions(t *testing.T) {
	d := startDemo(t)
	for _, tc := range []struct{ interaction, path, tag string }{
		{mapping.InteractionRequestChannel, "/ws/chat", "chat"},
		{mapping.InteractionRSocket, "/rsocket", ""},
	} {
		t.Run(tc.interaction, func(t *testing.T) {
			cfg := newConfig(map[string]string{"b": d.Addr().String()}, []routeSpec{
				{name: "ws", path: tc.path, backend: "b", interaction: tc.interaction, tag: tc.tag,
					mutate: func(r *mapping.Route) { r.WebSocket.MaxSessions = 2 }},
			})
			g := startGateway(t, cfg, Options{})
			a := dialWS(t, wsURL(g, tc.path), nil)
			_ = dialWS(t, wsURL(g, tc.path), nil)
			dl := websocket.Dialer{HandshakeTimeout: testTimeout}
			_, resp, err := dl.Dial(wsURL(g, tc.path), nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("third session: %v, %+v; want 503", err, resp)
			}
			body, _ := io.ReadAll(resp.Body)
			var e struct{ Code string }
			if json.Unmarshal(body, &e) != nil || e.Code != CodeTooManySessions {
				t.Fatalf("body %q, want code %s", body, CodeTooManySessions)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			_ = a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			_ = a.Close()
			testutil.Eventually(t, func() bool { return g.srv.routeSessions("ws") == 1 }, "the slot to be released")
			_ = dialWS(t, wsURL(g, tc.path), nil)
		})
	}
}

// A text message that is not valid UTF-8 closes a request-channel socket with 1007 and cancels the
// channel; nothing is echoed.
func TestWSChannelInvalidUTF8(t *testing.T) {
	d := startDemo(t)
	g := chatGateway(t, d.Addr().String(), nil)
	ws := dialWS(t, wsURL(g, "/ws/chat"), nil)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"ok":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"ok":1}` {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("{\"bad\":\"\xff\xfe\"}")); err != nil {
		t.Fatal(err)
	}
	code, _ := closeCode(t, ws)
	if code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("close code %d, want 1007", code)
	}
	testutil.Eventually(t, func() bool { return g.srv.wsSessionCount() == 0 }, "the session to end")
}

func TestItemMessageType(t *testing.T) {
	if itemMessageType(websocket.TextMessage, []byte("ok é")) != websocket.TextMessage {
		t.Error("valid UTF-8 item not sent as text")
	}
	if itemMessageType(websocket.TextMessage, []byte{'a', 0xff}) != websocket.BinaryMessage {
		t.Error("invalid UTF-8 item sent as text")
	}
	if itemMessageType(websocket.BinaryMessage, []byte("x")) != websocket.BinaryMessage {
		t.Error("binary route changed")
	}
}
