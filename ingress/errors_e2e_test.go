package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/transport"
)

func specialRoutes() []routeSpec {
	rr := mapping.InteractionRequestResponse
	return []routeSpec{
		{name: "err", method: "GET", path: "/err/{code}", backend: "sp", interaction: rr, tag: "err.{code}",
			mutate: func(r *mapping.Route) {
				r.Errors = map[string]int{"0x301": 409, "failed with 0x20": 422}
			}},
		{name: "plain-err", method: "GET", path: "/plain-err/{code}", backend: "sp", interaction: rr, tag: "err.{code}"},
		{name: "hang", method: "GET", path: "/hang", backend: "sp", interaction: rr, tag: "hang", timeout: 80 * time.Millisecond},
		{name: "hang-long", method: "GET", path: "/hang-long", backend: "sp", interaction: rr, tag: "hang", timeout: 30 * time.Second},
		{name: "meta", method: "POST", path: "/meta/{id}", backend: "sp", interaction: rr, tag: "meta",
			mutate: func(r *mapping.Route) { r.ForwardHeaders = []string{"X-Trace", "content-type"} }},
		{name: "meta-noauth", method: "POST", path: "/meta-noauth", backend: "sp", interaction: rr, tag: "meta",
			mutate: func(r *mapping.Route) { r.ForwardAuth = false }},
		{name: "echo", method: "POST", path: "/echo", backend: "sp", interaction: rr, tag: "echo"},
		{name: "sleep", method: "GET", path: "/sleep/{ms}", backend: "sp", interaction: rr, tag: "sleep.{ms}"},
		{name: "empty", method: "GET", path: "/empty", backend: "sp", interaction: rr, tag: "empty"},
		{name: "long-tag", method: "GET", path: "/tag/{t}", backend: "sp", interaction: rr, tag: "{t}"},
		// resume_window 0 on "endless" and "idle": their tests expect CANCEL as soon as the client goes
		// (resumable SSE streams are parked instead: stream_resume_e2e_test.go).
		{name: "endless", path: "/endless", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "endless",
			mutate: func(r *mapping.Route) { r.Stream.Window, r.Stream.ResumeWindow = 8, 0 }},
		{name: "endless-timeout", path: "/endless-timeout", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "endless",
			timeout: 300 * time.Millisecond, mutate: func(r *mapping.Route) { r.Stream.Window = 8 }},
		{name: "idle", path: "/idle", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "idle",
			mutate: func(r *mapping.Route) { r.Stream.ResumeWindow = 0 }},
		{name: "idle-timeout", path: "/idle-timeout", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "idle", timeout: 100 * time.Millisecond},
		{name: "fail-after", path: "/fail-after/{n}", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "fail-after.{n}"},
		{name: "multiline", path: "/multiline", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "multiline",
			mutate: func(r *mapping.Route) { r.Stream.Format = mapping.StreamSSE }},
		{name: "stream-err", path: "/stream-err/{code}", backend: "sp", interaction: mapping.InteractionRequestStream, tag: "err.{code}"},
	}
}

func startSpecial(t *testing.T, opts Options) (*special, *rsocketBackend, *gateway) {
	t.Helper()
	sp := newSpecial()
	b := startBackend(t, sp.handler)
	g := startGateway(t, newConfig(map[string]string{"sp": b.addr}, specialRoutes()), opts)
	return sp, b, g
}

// TestErrorMapping checks every row of the default error table for ERROR frames, and the route's errors map.
func TestErrorMapping(t *testing.T) {
	_, _, g := startSpecial(t, Options{})
	for _, tc := range []struct {
		path       string
		status     int
		code       string
		retryAfter bool
	}{
		{"/plain-err/0x201", 500, "APPLICATION_ERROR", false},
		{"/plain-err/0x202", 503, "REJECTED", true},
		{"/plain-err/0x203", 503, "CANCELED", false},
		{"/plain-err/0x204", 400, "INVALID", false},
		{"/plain-err/0x301", 500, "APPLICATION_CODE_0x301", false},
		{"/err/0x301", 409, "APPLICATION_CODE_0x301", false}, // route errors: code rule
		{"/err/0x201", 422, "APPLICATION_ERROR", false},      // route errors: message prefix rule
		{"/err/0x204", 400, "INVALID", false},                // prefix rules apply to APPLICATION_ERROR only
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			r := g.do("GET", tc.path, "")
			m := jsonError(t, r, tc.status, tc.code)
			if !strings.HasPrefix(m["error"].(string), "failed with") {
				t.Fatalf("message %q", m["error"])
			}
			if got := r.header.Get("Retry-After"); (got != "") != tc.retryAfter {
				t.Fatalf("Retry-After %q, want present=%v", got, tc.retryAfter)
			}
		})
	}
}

func TestConnectionErrorIs502(t *testing.T) {
	sp := newSpecial()
	var b *rsocketBackend
	b = startBackend(t, func() rsocket.Handler {
		h := sp.handler()
		hf := h.(*rsocket.HandlerFuncs)
		rr := hf.RequestResponseFunc
		hf.RequestResponseFunc = func(req rsocket.Payload, s *rsocket.Stream) {
			if firstTag(req.Metadata) == "err.0x101" {
				// A connection-level error: the backend kills the whole connection.
				b.mu.Lock()
				conns := append([]*rsocket.Conn(nil), b.conns...)
				b.mu.Unlock()
				for _, c := range conns {
					go c.CloseWithError(0x101, "backend broke")
				}
				return
			}
			rr(req, s)
		}
		return hf
	})
	g := startGateway(t, newConfig(map[string]string{"sp": b.addr}, specialRoutes()), Options{})
	r := g.do("GET", "/plain-err/0x101", "")
	jsonError(t, r, 502, "")
	// The pool reconnects; requests succeed again.
	g.waitReady()
	testutil.Eventually(t, func() bool { return g.do("GET", "/empty", "").status == 200 }, "requests to succeed after reconnect")
}

func TestPoolErrorsAre503(t *testing.T) {
	// A backend that is not listening: the pool has no connection.
	cfg := newConfig(map[string]string{"down": "127.0.0.1:1"}, []routeSpec{
		{name: "down", method: "GET", path: "/down", backend: "down", interaction: mapping.InteractionRequestResponse, tag: "x"},
		{name: "down-stream", path: "/down-stream", backend: "down", interaction: mapping.InteractionRequestStream, tag: "x"},
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw := startGatewayNoWait(t, cfg, table)
	for _, p := range []string{"/down", "/down-stream"} {
		r := gw.do("GET", p, "")
		jsonError(t, r, 503, CodeNoConnection)
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", p)
		}
	}
}

func TestMetadataForwarding(t *testing.T) {
	sp, _, g := startSpecial(t, Options{})
	r := g.do("POST", "/meta/7?q=1", `{}`, "Authorization", "Bearer tok123", "X-Trace", "abc", "Content-Type", "application/json")
	// The backend's gateway response entry: status 201, X-Backend header, Content-Type text/plain; its
	// Connection header is hop-by-hop and dropped.
	if r.status != 201 || r.header.Get("X-Backend") != "special" || r.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("response entry not applied: %d %v", r.status, r.header)
	}
	if r.header.Get("Connection") == "close" {
		t.Fatal("hop-by-hop Connection header from the backend was applied")
	}
	var got struct {
		Route, Bearer, Method, Target string
		Headers                       []string
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if got.Route != "meta" || got.Bearer != "tok123" || got.Method != "POST" || got.Target != "/meta/7?q=1" {
		t.Fatalf("backend saw %+v", got)
	}
	if strings.Join(got.Headers, "|") != "x-trace: abc|content-type: application/json" {
		t.Fatalf("forwarded headers %q", got.Headers)
	}
	// forward_auth false, no forward_headers: routing entry only.
	r = g.do("POST", "/meta-noauth", `{}`, "Authorization", "Bearer tok123")
	if r.body != `{"route":"meta"}` {
		t.Fatalf("meta-noauth: backend saw %s", r.body)
	}
	_ = sp
}

func TestEmptyAnswerAndLongTag(t *testing.T) {
	_, _, g := startSpecial(t, Options{})
	if r := g.do("GET", "/empty", ""); r.status != 200 || r.body != "" {
		t.Fatalf("empty answer: %d %q", r.status, r.body)
	}
	jsonError(t, g.do("GET", "/tag/"+strings.Repeat("t", 256), ""), 400, CodeBadRequest)
	if r := g.do("GET", "/tag/"+strings.Repeat("t", 255), ""); r.status != 200 {
		t.Fatalf("255-byte tag: %d %q", r.status, r.body)
	}
}

func TestTimeoutCancelsUpstream(t *testing.T) {
	sp, _, g := startSpecial(t, Options{})
	start := time.Now()
	jsonError(t, g.do("GET", "/hang", ""), 504, CodeTimeout)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("504 after %v", d)
	}
	sp.expectCanceled(t, "hang", "backend never saw CANCEL after the route timeout")
}

func TestStreamErrors(t *testing.T) {
	_, _, g := startSpecial(t, Options{})
	t.Run("immediate-error-gets-status", func(t *testing.T) {
		jsonError(t, g.do("GET", "/stream-err/0x201", ""), 500, "APPLICATION_ERROR")
		jsonError(t, g.do("GET", "/stream-err/0x204", ""), 400, "INVALID")
	})
	t.Run("ndjson-mid-stream", func(t *testing.T) {
		r := g.do("GET", "/fail-after/2", "")
		want := "{\"n\":0}\n{\"n\":1}\n{\"error\":\"broke after 2\",\"code\":\"APPLICATION_ERROR\"}\n"
		if r.status != 200 || r.body != want {
			t.Fatalf("ndjson error: %d %q", r.status, r.body)
		}
	})
	t.Run("sse-mid-stream", func(t *testing.T) {
		r := g.do("GET", "/fail-after/1", "", "Accept", "text/event-stream")
		want := "id: 1\ndata: {\"n\":0}\n\nevent: error\ndata: {\"error\":\"broke after 1\",\"code\":\"APPLICATION_ERROR\"}\n\n"
		if body := stripSessionIDs(t, r.body); r.status != 200 || body != want {
			t.Fatalf("sse error: %d %q", r.status, body)
		}
	})
	t.Run("sse-multiline-item", func(t *testing.T) {
		r := g.do("GET", "/multiline", "")
		if want := "id: 1\ndata: a\ndata: b\ndata: c\n\n"; stripSessionIDs(t, r.body) != want {
			t.Fatalf("multiline: %q, want %q", r.body, want)
		}
	})
	t.Run("stream-timeout", func(t *testing.T) {
		r := g.do("GET", "/idle-timeout", "")
		want := "{\"error\":\"route timeout after 100ms\",\"code\":\"TIMEOUT\"}\n"
		if r.status != 200 || r.body != want {
			t.Fatalf("stream timeout: %d %q", r.status, r.body)
		}
	})
}

func TestHeadersTooLarge(t *testing.T) {
	_, _, g := startSpecial(t, Options{})
	r := g.do("POST", "/echo", "{}", "X-Big", strings.Repeat("b", 9<<10))
	jsonError(t, r, 431, CodeHeadersTooLarge) // its own code, not BAD_REQUEST (issue 13)
	// The server still serves.
	if r := g.do("POST", "/echo", "{}"); r.status != 200 {
		t.Fatalf("after 431: %d", r.status)
	}
	// Counted under the matched route (the path normalised, as for any request), not "_unmatched"
	// (issue 13); a request line longer than the 200 bytes fasthttp's error quotes still counts under
	// its route when the cut falls in the query, and as unmatched when it falls in the path.
	jsonError(t, g.do("POST", "/x/../echo", "{}", "X-Big", strings.Repeat("b", 9<<10)), 431, CodeHeadersTooLarge)
	jsonError(t, g.do("POST", "/echo?q="+strings.Repeat("q", 300), "{}", "X-Big", strings.Repeat("b", 9<<10)), 431, CodeHeadersTooLarge)
	jsonError(t, g.do("POST", "/"+strings.Repeat("p/../", 60)+"echo", "{}", "X-Big", strings.Repeat("b", 9<<10)), 431, CodeHeadersTooLarge)
	m := metricsText(g)
	for _, want := range []string{
		`rsgate_http_requests_total{route="echo",status="4xx"} 3` + "\n",
		`rsgate_http_requests_total{route="_unmatched",status="4xx"} 1` + "\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("431s: want %s in\n%s", want, m)
		}
	}
}

func TestRequestLineOf(t *testing.T) {
	for _, tc := range []struct{ msg, method, target string }{
		{`error when reading request headers: small read buffer. Increase ReadBufferSize: buffer size=8192, contents: "GET /api/users/42 HTTP/1.1\r\nHost: x\r\nX-Big: bbbb"..."bbbb"`, "GET", "/api/users/42"},
		{`contents: "POST /a%20b?x=\"1\" HTTP/1.0\nX: y"`, "POST", `/a%20b?x="1"`},
		{`contents: "GET /no-line-end HTTP/1.1"...""`, "", ""},                         // the line is cut: unknown
		{`contents: "GET /api/users/42?q=aaaa"..."aa"`, "GET", "/api/users/42?q=aaaa"}, // cut in the query: the path is whole
		{`contents: "GET /api/users/4"..."2"`, "", ""},                                 // cut in the path: unknown
		{`contents: "GET ?q=aaaa"..."a"`, "", ""},                                      // no path before the query
		{`contents: "GET /a?b c"...""`, "", ""},                                        // cut after a second space: not a target
		{`contents: "GET /x"`, "", ""},                                                 // no protocol
		{`contents: "GET  /x HTTP/1.1\r\n"`, "", ""},                                   // empty target
		{`contents: "GET /x FTP/1\r\n"`, "", ""},                                       // not HTTP
		{`buffer size=8192`, "", ""},                                                   // SecureErrorLogMessage: no contents
		{`contents: "GET /x HTTP/1.1\r\n`, "", ""},                                     // unterminated quote
		{`contents: "\xff\xfe" contents: "PUT /last HTTP/1.1\r\n"`, "PUT", "/last"},    // the last "contents: "
	} {
		m, tg, ok := requestLineOf(tc.msg)
		if ok != (tc.method != "") || string(m) != tc.method || string(tg) != tc.target {
			t.Errorf("requestLineOf(%q) = %q %q %v, want %q %q", tc.msg, m, tg, ok, tc.method, tc.target)
		}
	}
}

func FuzzRequestLineOf(f *testing.F) {
	f.Add(`contents: "GET /api/users/42 HTTP/1.1\r\nHost: x"`)
	f.Add(`contents: "POST /a HTTP/1.0\n"...""`)
	f.Add(`contents: "GET /x"`)
	f.Add(`contents: "GET /x?q=aaaa"..."a"`)
	f.Fuzz(func(t *testing.T, msg string) {
		m, tg, ok := requestLineOf(msg)
		if !ok {
			if m != nil || tg != nil {
				t.Fatalf("not ok but %q %q", m, tg)
			}
			return
		}
		if len(m) == 0 || len(tg) == 0 || bytes.ContainsAny(m, " \n") || bytes.ContainsAny(tg, " \n") {
			t.Fatalf("%q: method %q target %q", msg, m, tg)
		}
	})
}

func TestFireAndForgetNoConnection(t *testing.T) {
	cfg := newConfig(map[string]string{"down": "127.0.0.1:1"}, []routeSpec{
		{name: "fnf", path: "/fnf", backend: "down", interaction: mapping.InteractionFireAndForget, tag: "x"},
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayNoWait(t, cfg, table)
	jsonError(t, g.do("POST", "/fnf", "{}"), 503, CodeNoConnection)
}

// TestSetupRefusedIs502: a backend that refuses the gateway's SETUP (ERROR[REJECTED_SETUP]) is up but
// will not serve it: 502 with the refusal's code, not 503 + Retry-After.
func TestSetupRefusedIs502(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &rsocket.Server{Acceptor: func(*rsocket.SetupInfo, *rsocket.Conn) (rsocket.Handler, error) {
		return nil, errors.New("unknown tenant")
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = ln.Close() })
	g := startGateway(t, newConfig(map[string]string{"refusing": ln.Addr().String()}, []routeSpec{
		{name: "r", method: "GET", path: "/r", backend: "refusing", interaction: mapping.InteractionRequestResponse, tag: "x"},
	}), Options{})
	// A request can reach a connection in the moment between SETUP and the refusal (the in-flight path: 502
	// CONNECTION_ERROR-like, code REJECTED_SETUP); once the connection is gone the pool answers for it.
	var r result
	testutil.Eventually(t, func() bool {
		r = g.do("GET", "/r", "")
		if r.status != 502 {
			return false
		}
		m := jsonError(t, r, 502, "REJECTED_SETUP")
		return strings.Contains(m["error"].(string), "refused SETUP")
	}, "the pool's 502 for the refused SETUP")

	if r.header.Get("Retry-After") != "" {
		t.Fatal("Retry-After on a refused SETUP")
	}
}
