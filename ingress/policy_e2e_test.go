package ingress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// rawGET sends "GET target HTTP/1.1" byte for byte (no client-side escaping) and returns the answer.
func rawGET(t *testing.T, addr, target string, hdr ...string) result {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// TestPathParamInjection: parameter values that would change or corrupt the routing tag are refused with
// 400 BAD_PARAMETER before any tag is built; a route's own pattern and {name:any} apply as configured.
func TestPathParamInjection(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "num", method: "GET", path: "/api/num/{id:[0-9]+}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "legacy", method: "GET", path: "/api/any/{id:any}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "ticks", path: "/api/ticks/{n}", backend: "demo", interaction: mapping.InteractionRequestStream, tag: "ticks.{n}"},
	})
	g := startGateway(t, cfg, Options{})
	ok := map[string]string{
		"/api/users/42":       `{"id":"42"}`,
		"/api/users/a-b_c~d":  `{"id":"a-b_c~d"}`,
		"/api/num/42":         `{"id":"42"}`,
		"/api/any/42.admin":   `{"id":"42.admin"}`, // the old behaviour, on purpose
		"/api/users/42?x=a.b": `{"id":"42"}`,
	}
	for target, want := range ok {
		if r := rawGET(t, g.addr, target); r.status != 200 || r.body != want {
			t.Errorf("%s: %d %q, want 200 %s", target, r.status, r.body, want)
		}
	}
	bad := []string{
		"/api/users/42.admin", "/api/users/42%2eadmin", "/api/users/42%2Eadmin", "/api/users/%00", "/api/users/a%00b",
		"/api/users/%0a", "/api/users/a%0d%0aX-Injected:%201", "/api/users/%ff", "/api/users/%c3%28", "/api/users/%C3%A9",
		"/api/users/a%20b", "/api/users/a+b", "/api/users/" + strings.Repeat("9", 257), "/api/users/fail", // ok: "fail" is valid
		"/api/users/a:b", "/api/users/%2e%2e%2fadmin", "/api/num/4a", "/api/num/1.2", "/api/ticks/3.fail", "/api/ticks/%0a",
	}
	for _, target := range bad {
		r := rawGET(t, g.addr, target)
		if target == "/api/users/fail" { // a valid value: the tag is users.fail, which the demo does not know
			if r.status == 400 {
				t.Errorf("%s: 400 for a valid value", target)
			}
			continue
		}
		if r.status == 404 && strings.Contains(target, "%2f") {
			continue // decoded "/" makes another path: not a parameter any more
		}
		m := jsonError(t, r, 400, CodeBadParameter)
		if msg, _ := m["error"].(string); !strings.HasPrefix(msg, `invalid path parameter "`) {
			t.Errorf("%s: message %q", target, msg)
		}
	}
	// The backend sees the valid request only: nothing built from a refused value leaves the gateway.
	spy := newSpecial()
	sb := startBackend(t, spy.handler)
	cfg2 := newConfig(map[string]string{"spy": sb.addr}, []routeSpec{
		{name: "spy", method: "GET", path: "/api/spy/{id}", backend: "spy", interaction: mapping.InteractionRequestResponse, tag: "spy.{id}"},
	})
	g2 := startGateway(t, cfg2, Options{})
	if r := rawGET(t, g2.addr, "/api/spy/ok"); r.status != 200 {
		t.Fatalf("spy: %d %q", r.status, r.body)
	}
	for _, target := range []string{"/api/spy/ok.admin", "/api/spy/%00", "/api/spy/%ff", "/api/spy/ok%0a"} {
		jsonError(t, rawGET(t, g2.addr, target), 400, CodeBadParameter)
	}
	if md := spy.lastMetadata.Load(); md == nil || firstTag(*md) != "spy.ok" {
		t.Fatalf("the backend saw another tag after the refused requests")
	}
}

// corsGateway serves the demo with a top-level CORS policy and per-route overrides.
func corsGateway(t *testing.T) *gateway {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		{name: "echo", method: "POST", path: "/api/echo", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "echo"},
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "open", method: "GET", path: "/api/open/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.CORS = &mapping.CORSConfig{Origins: []string{"*"}} }},
		{name: "creds", method: "GET", path: "/api/creds/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) {
				r.CORS = &mapping.CORSConfig{Origins: []string{"https://app.example.com"}, Credentials: true, Methods: []string{"GET", "PUT"}}
			}},
		{name: "off", method: "GET", path: "/api/off/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.CORS = &mapping.CORSConfig{} }},
		{name: "chat", path: "/ws/chat", backend: "demo", interaction: mapping.InteractionRequestChannel, tag: "chat"},
		{name: "ticks", path: "/api/ticks/{n}", backend: "demo", interaction: mapping.InteractionRequestStream, tag: "ticks.{n}"},
	})
	cfg.CORS = &mapping.CORSConfig{
		Origins:       []string{"https://app.example.com", "https://*.example.org"},
		Headers:       []string{"Content-Type", "Authorization"},
		ExposeHeaders: []string{"X-Request-Id"},
		MaxAge:        mapping.Duration(10 * time.Minute),
	}
	return startGateway(t, cfg, Options{})
}

func noCORS(t *testing.T, what string, r result) {
	t.Helper()
	for k := range r.header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s: unexpected %s: %q", what, k, r.header.Get(k))
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	g := corsGateway(t)
	pre := func(path, origin, method, headers string) result {
		h := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			h = append(h, "Access-Control-Request-Headers", headers)
		}
		return g.do("OPTIONS", path, "", h...)
	}
	r := pre("/api/echo", "https://app.example.com", "POST", "content-type, authorization")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.header.Get("Access-Control-Allow-Methods") != "POST" ||
		r.header.Get("Access-Control-Allow-Headers") != "content-type, authorization" ||
		r.header.Get("Access-Control-Max-Age") != "600" || r.header.Get("Access-Control-Allow-Credentials") != "" ||
		!strings.Contains(r.header.Get("Vary"), "Origin") || r.body != "" {
		t.Fatalf("allowed preflight: %d %v %q", r.status, r.header, r.body)
	}
	// Wildcard subdomains: any depth, not the domain itself, scheme and port exact.
	if r := pre("/api/users/1", "https://a.b.example.org", "GET", ""); r.status != 204 ||
		r.header.Get("Access-Control-Allow-Origin") != "https://a.b.example.org" || r.header.Get("Access-Control-Allow-Methods") != "GET" {
		t.Fatalf("wildcard preflight: %d %v", r.status, r.header)
	}
	for _, o := range []string{"https://example.org", "http://a.example.org", "https://a.example.org:8443", "https://evil.com",
		"https://app.example.com.evil.com", "null"} {
		r := pre("/api/users/1", o, "GET", "")
		jsonError(t, r, 403, CodeForbiddenCORS)
		noCORS(t, "origin "+o, r)
	}
	// A header outside the list.
	r = pre("/api/echo", "https://app.example.com", "POST", "content-type, x-evil")
	jsonError(t, r, 403, CodeForbiddenCORS)
	noCORS(t, "header x-evil", r)
	// A method with no route on the path is not a preflight the gateway answers: 405 as for any OPTIONS.
	r = pre("/api/echo", "https://app.example.com", "DELETE", "")
	if r.status != 405 {
		t.Fatalf("DELETE preflight: %d", r.status)
	}
	noCORS(t, "DELETE", r)
	// Route policies: "*" without credentials; credentials echo the origin; methods list; CORS off.
	if r := pre("/api/open/1", "https://anything.test", "GET", ""); r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("open preflight: %d %v", r.status, r.header)
	}
	r = pre("/api/creds/1", "https://app.example.com", "GET", "content-type")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" || r.header.Get("Access-Control-Allow-Methods") != "GET, PUT" {
		t.Fatalf("creds preflight: %d %v", r.status, r.header)
	}
	if r := pre("/api/off/1", "https://app.example.com", "GET", ""); r.status != 405 {
		t.Fatalf("CORS-off route preflight: %d, want 405 (OPTIONS has no route)", r.status)
	} else {
		noCORS(t, "off", r)
	}
	// An OPTIONS without Access-Control-Request-Method is not a preflight.
	if r := g.do("OPTIONS", "/api/echo", "", "Origin", "https://app.example.com"); r.status != 405 {
		t.Fatalf("plain OPTIONS: %d", r.status)
	}
}

func TestCORSActualRequests(t *testing.T) {
	g := corsGateway(t)
	r := g.do("POST", "/api/echo", `{"a":1}`, "Origin", "https://app.example.com", "Content-Type", "application/json")
	if r.status != 200 || r.body != `{"a":1}` || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.header.Get("Access-Control-Expose-Headers") != "X-Request-Id" || r.header.Get("Vary") != "Origin" {
		t.Fatalf("allowed origin: %d %v %q", r.status, r.header, r.body)
	}
	r = g.do("POST", "/api/echo", `{"a":1}`, "Origin", "https://evil.com")
	if r.status != 200 || r.header.Get("Vary") != "Origin" {
		t.Fatalf("disallowed origin: %d %v", r.status, r.header)
	}
	noCORS(t, "disallowed origin", r)
	r = g.do("GET", "/api/users/7", "")
	if r.status != 200 || r.header.Get("Vary") != "Origin" {
		t.Fatalf("no origin: %d %v", r.status, r.header)
	}
	noCORS(t, "no origin", r)
	// Errors carry the headers too, so that the page can read them.
	r = g.do("GET", "/api/users/1.x", "", "Origin", "https://x.example.org")
	jsonError(t, r, 400, CodeBadParameter)
	if r.header.Get("Access-Control-Allow-Origin") != "https://x.example.org" {
		t.Fatalf("400 without CORS headers: %v", r.header)
	}
	r = g.do("GET", "/api/creds/7", "", "Origin", "https://app.example.com")
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("credentials: %v", r.header)
	}
	r = g.do("GET", "/api/open/7", "", "Origin", "https://anything.test")
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("open: %v", r.header)
	}
	r = g.do("GET", "/api/ticks/3", "", "Origin", "https://app.example.com", "Accept", "text/event-stream")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(r.body, "data:") {
		t.Fatalf("stream: %d %v %q", r.status, r.header, r.body)
	}
	r = g.do("GET", "/api/off/7", "", "Origin", "https://app.example.com")
	if r.status != 200 || r.header.Get("Vary") != "" {
		t.Fatalf("off: %d %v", r.status, r.header)
	}
	noCORS(t, "off", r)
	// WebSocket routes keep websocket.origins (same origin by default): a cross-site upgrade is refused
	// although the origin is allowed by cors.
	hdr := http.Header{"Origin": {"https://app.example.com"}}
	_, resp, err := (&websocket.Dialer{HandshakeTimeout: testTimeout}).Dial(wsURL(g, "/ws/chat"), hdr)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site upgrade: %v %v", err, resp)
	}
}

// TestRateLimitE2E: a bounded burst at full speed against rate 60/m (one token a second), burst 50: the
// number of 429s is the token-bucket count within 5%, 429s carry Retry-After and the RateLimit headers,
// keys are separate buckets, and the top-level limit is shared by the routes without their own.
func TestRateLimitE2E(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.RateLimit = &mapping.RateLimitConfig{Rate: "60/m", Burst: 50} }},
		{name: "keyed", method: "GET", path: "/api/keyed/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) {
				r.RateLimit = &mapping.RateLimitConfig{Rate: "1/h", Burst: 2, Key: "header:X-API-Key"}
			}},
		{name: "a", method: "GET", path: "/api/a/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "b", method: "GET", path: "/api/b/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "free", method: "GET", path: "/api/free/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.RateLimit = &mapping.RateLimitConfig{Rate: "off"} }},
	})
	cfg.RateLimit = &mapping.RateLimitConfig{Rate: "1/h", Burst: 3}
	g := startGateway(t, cfg, Options{})

	const n, burst = 300, 50
	start := time.Now()
	limited := 0
	var last result
	for i := 0; i < n; i++ {
		r := g.do("GET", "/api/users/1", "")
		switch r.status {
		case 200:
		case 429:
			limited++
			last = r
		default:
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
	}
	elapsed := time.Since(start)
	// Tokens: the burst, plus one per whole second elapsed (at most).
	expected := float64(n - burst - int(elapsed/time.Second))
	if lo, hi := expected*0.95-1, float64(n-burst); float64(limited) < lo || float64(limited) > hi {
		t.Fatalf("%d of %d limited in %v, want %.0f (within 5%%)", limited, n, elapsed, expected)
	}
	t.Logf("%d of %d limited in %v (token-bucket count %.0f)", limited, n, elapsed, expected)
	jsonError(t, last, 429, CodeRateLimited)
	if ra, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || ra < 1 || ra > 1 {
		t.Errorf("Retry-After %q, want 1", last.header.Get("Retry-After"))
	}
	if p := last.header.Get("RateLimit-Policy"); p != `"users";q=60;w=60` {
		t.Errorf("RateLimit-Policy %q", p)
	}
	if rl := last.header.Get("RateLimit"); !strings.HasPrefix(rl, `"users";r=0;t=`) {
		t.Errorf("RateLimit %q", rl)
	}
	if r := g.do("GET", "/api/free/1", ""); r.status != 200 || r.header.Get("RateLimit") != "" {
		t.Errorf("rate: off route: %d %v", r.status, r.header)
	}

	// Keys: header values are separate buckets (burst 2 each); no header falls back to the IP.
	for _, key := range []string{"k1", "k2"} {
		for i := 0; i < 3; i++ {
			r := g.do("GET", "/api/keyed/1", "", "X-API-Key", key)
			if want := map[bool]int{true: 200, false: 429}[i < 2]; r.status != want {
				t.Fatalf("key %s request %d: %d, want %d", key, i, r.status, want)
			}
			if i == 0 && r.header.Get("RateLimit") != `"keyed";r=1;t=3600` {
				t.Errorf("first request RateLimit %q", r.header.Get("RateLimit"))
			}
		}
	}
	// The top-level limit (burst 3) is one bucket per client across the routes without their own.
	got := []int{g.do("GET", "/api/a/1", "").status, g.do("GET", "/api/b/1", "").status, g.do("GET", "/api/a/2", "").status,
		g.do("GET", "/api/b/2", "").status}
	if got[0] != 200 || got[1] != 200 || got[2] != 200 || got[3] != 429 {
		t.Fatalf("shared global limit: %v", got)
	}
	if p := g.do("GET", "/api/a/1", "").header.Get("RateLimit-Policy"); p != `"global";q=1;w=3600` {
		t.Errorf("global RateLimit-Policy %q", p)
	}
}

// TestWSSessionRateLimit: websocket.rate_limit closes a request-channel session with 1008 past its
// burst, and refuses an rsocket session's requests past it with ERROR[REJECTED] while the session goes on.
func TestWSSessionRateLimit(t *testing.T) {
	d := startDemo(t)
	limit := func(r *mapping.Route) { r.WebSocket.RateLimit = &mapping.RateLimitConfig{Rate: "1/h", Burst: 3} }
	g := chatGateway(t, d.Addr().String(), limit)
	ws := dialWS(t, wsURL(g, "/ws/chat"), nil)
	for i := 0; i < 3; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"n":`+strconv.Itoa(i)+`}` {
			t.Fatalf("echo %d: %q %v", i, msg, err)
		}
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if code, reason := closeCode(t, ws); code != websocket.ClosePolicyViolation || reason != msgSessionRateLimited {
		t.Fatalf("close %d %q, want 1008", code, reason)
	}

	rg := rsGateway(t, map[string]string{"b": d.Addr().String()}, Options{}, limit)
	c, _ := dialRSocket(t, rg, "/rsocket", rsocket.Payload{})
	for i := 0; i < 5; i++ {
		msg, _, err := c.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.7")})
		if i < 3 {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			msg.Release()
			continue
		}
		var re *rsocket.Error
		if !errors.As(err, &re) || re.Code != frame.CodeRejected || re.Message != msgSessionRateLimited {
			t.Fatalf("request %d: %v, want ERROR[REJECTED]", i, err)
		}
	}
	// A second session has its own bucket.
	c2, _ := dialRSocket(t, rg, "/rsocket", rsocket.Payload{})
	msg, _, err := c2.RequestResponse(context.Background(), rsocket.Payload{Metadata: routeMD("users.7")})
	if err != nil {
		t.Fatalf("second session: %v", err)
	}
	msg.Release()
}

// TestRateLimitPacedE2E: requests sent at a known rate (twice the limit) for about 1.5 s; the expected
// number of 429s is computed by running the token bucket over the client's own send times, and the
// gateway's count must be within 5% of it (loopback latency shifts a few requests across token edges).
func TestRateLimitPacedE2E(t *testing.T) {
	d := startDemo(t)
	const rate, burst, n, every = 50, 10, 150, 10 * time.Millisecond
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
		{name: "paced", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}",
			mutate: func(r *mapping.Route) { r.RateLimit = &mapping.RateLimitConfig{Rate: "50/s", Burst: burst} }},
	})
	g := startGateway(t, cfg, Options{})
	var (
		sent    []time.Time
		limited int
	)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		sent = append(sent, time.Now())
		switch r := g.do("GET", "/api/users/1", ""); r.status {
		case 200:
		case 429:
			limited++
		default:
			t.Fatalf("request %d: %d", i, r.status)
		}
		<-tick.C
	}
	// The reference: the same bucket over the send times.
	var tat int64
	interval := int64(time.Second / rate)
	want := 0
	for _, at := range sent {
		if ok, _, _, _ := gcra(&tat, int64(at.Sub(sent[0])), interval, burst*interval); !ok {
			want++
		}
	}
	tol := max(2, float64(want)*0.05)
	if d := float64(limited - want); d < -tol || d > tol {
		t.Fatalf("%d of %d limited over %v, token-bucket count %d (tolerance %.1f)", limited, n, time.Since(sent[0]), want, tol)
	}
	t.Logf("%d of %d limited over %v; token-bucket count %d", limited, n, time.Since(sent[0]), want)
}

// TestPoliciesOnProxiedRoutes: on interaction http the upstream's response headers replace the response
// headers; the gateway's CORS and RateLimit headers are set again after, and the default parameter check
// applies to the rewritten path too.
func TestPoliciesOnProxiedRoutes(t *testing.T) {
	l := startLegacy(t)
	cfg := mapping.NewConfig()
	addHTTPBackend(cfg, "legacy", l.url)
	r := mapping.NewRoute("users", mapping.InteractionHTTP)
	r.Method, r.Path, r.Backend, r.Rewrite = "GET", "/api/users/{id}", "legacy", "/v1/users/{id}"
	r.CORS = &mapping.CORSConfig{Origins: []string{"https://app.example.com"}, ExposeHeaders: []string{"X-Backend"}}
	r.RateLimit = &mapping.RateLimitConfig{Rate: "1/h", Burst: 5}
	cfg.Routes = append(cfg.Routes, r)
	g := startGateway(t, cfg, Options{})
	res := g.do("GET", "/api/users/42", "", "Origin", "https://app.example.com")
	if res.status != 200 || res.header.Get("X-Backend") != "legacy" || res.body != `{"id":"42"}` {
		t.Fatalf("proxied: %d %v %q", res.status, res.header, res.body)
	}
	if res.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || res.header.Get("Access-Control-Expose-Headers") != "X-Backend" ||
		res.header.Get("RateLimit") != `"users";r=4;t=3600` || res.header.Get("RateLimit-Policy") != `"users";q=1;w=3600` {
		t.Fatalf("policy headers lost on the proxied answer: %v", res.header)
	}
	jsonError(t, g.do("GET", "/api/users/42.json", ""), 400, CodeBadParameter)
}
