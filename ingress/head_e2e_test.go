package ingress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
)

// rawExchange writes raw request bytes on one connection and reads one response per method in methods
// (HEAD responses have no body: reading them as such and then the next response proves none was sent).
func rawExchange(t *testing.T, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d (%s): %v", len(out)+1, m, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func headBody(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

func headRoutes(demoAddr, spAddr string) *mapping.Config {
	rr, rs := mapping.InteractionRequestResponse, mapping.InteractionRequestStream
	return newConfig(map[string]string{"demo": demoAddr, "sp": spAddr}, []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: rr, tag: "users.{id}"},
		{name: "echo", method: "POST", path: "/api/echo", backend: "demo", interaction: rr, tag: "echo"},
		{name: "ticks", path: "/api/ticks/{n}", backend: "demo", interaction: rs, tag: "ticks.{n}"},
		{name: "idle", path: "/idle", backend: "sp", interaction: rs, tag: "idle"},
		{name: "chat", path: "/ws/chat", backend: "demo", interaction: mapping.InteractionRequestChannel, tag: "chat"},
	})
}

// HEAD is served wherever GET is: headers of the GET answer (Content-Length included), no body (issue 13).
func TestHeadServedWhereGetIs(t *testing.T) {
	d := startDemo(t)
	sp, b := newSpecial(), (*rsocketBackend)(nil)
	b = startBackend(t, sp.handler)
	g := startGateway(t, headRoutes(d.Addr().String(), b.addr), Options{})

	get := g.do("GET", "/api/users/42", "")
	rs := rawExchange(t, g.addr,
		"HEAD /api/users/42 HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /api/users/42 HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "GET")
	head, after := rs[0], rs[1]
	if head.StatusCode != 200 || get.status != 200 {
		t.Fatalf("HEAD %d, GET %d", head.StatusCode, get.status)
	}
	if head.ContentLength != int64(len(get.body)) || head.Header.Get("Content-Type") != get.header.Get("Content-Type") {
		t.Fatalf("HEAD Content-Length %d Content-Type %q; GET body %d bytes, %q", head.ContentLength,
			head.Header.Get("Content-Type"), len(get.body), get.header.Get("Content-Type"))
	}
	if b := headBody(after); b != get.body {
		t.Fatalf("the GET after the HEAD read %q (a HEAD body on the wire?), want %q", b, get.body)
	}

	// A POST-only path: 405, and the Allow header lists what is allowed; GET paths list HEAD.
	if r := g.do("HEAD", "/api/echo", ""); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("HEAD on POST route: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := g.do("DELETE", "/api/users/1", ""); r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("DELETE: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

// HEAD on a stream route answers the stream's headers without opening a stream at the backend.
func TestHeadOnStreamRouteOpensNoStream(t *testing.T) {
	d := startDemo(t)
	sp := newSpecial()
	b := startBackend(t, sp.handler)
	g := startGateway(t, headRoutes(d.Addr().String(), b.addr), Options{})

	rs := rawExchange(t, g.addr,
		"HEAD /idle HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"+
			"HEAD /api/ticks/3 HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /api/ticks/2 HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", "HEAD", "GET")
	if rs[0].StatusCode != 200 || rs[0].Header.Get("Content-Type") != "text/event-stream" || rs[0].Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("HEAD SSE: %d %v", rs[0].StatusCode, rs[0].Header)
	}
	if rs[1].StatusCode != 200 || rs[1].Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("HEAD NDJSON: %d %v", rs[1].StatusCode, rs[1].Header)
	}
	if got := headBody(rs[2]); got != "{\"tick\":0}\n{\"tick\":1}\n" {
		t.Fatalf("GET after two HEADs: %q", got)
	}
	// "idle" never ends: had HEAD opened it, the backend would hold a stream (and see CANCEL later).
	time.Sleep(50 * time.Millisecond)
	if n := g.srv.InFlight(); n != 0 {
		t.Fatalf("%d calls in flight after HEAD on stream routes", n)
	}
	if sp.cancels.Load() != 0 {
		t.Fatal("the backend saw a stream for a HEAD")
	}

	// A WebSocket route: as a GET without upgrade, 426 without a body.
	r := g.do("HEAD", "/ws/chat", "")
	if r.status != 426 || r.body != "" {
		t.Fatalf("HEAD on a WebSocket route: %d %q", r.status, r.body)
	}
}

// Paths are matched after fasthttp's normalization (decoded, "//" collapsed, dot segments resolved), as
// README.md, config.example.yaml and docs/MIGRATION.md say; a trailing slash stays significant.
func TestPathNormalization(t *testing.T) {
	d := startDemo(t)
	b := startBackend(t, newSpecial().handler)
	g := startGateway(t, headRoutes(d.Addr().String(), b.addr), Options{})
	for _, p := range []string{"/api/users/42", "/api//users/42", "/api/users/../users/42", "/api/./users/42", "/api/users/%34%32"} {
		rs := rawExchange(t, g.addr, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
		if got := headBody(rs[0]); rs[0].StatusCode != 200 || got != `{"id":"42"}` {
			t.Errorf("GET %s: %d %q", p, rs[0].StatusCode, got)
		}
	}
	rs := rawExchange(t, g.addr, "GET /api/users/42/ HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	if rs[0].StatusCode != 404 {
		t.Errorf("trailing slash: %d, want 404", rs[0].StatusCode)
	}
}
