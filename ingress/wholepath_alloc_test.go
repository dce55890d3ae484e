//go:build !race

package ingress

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
)

// TestWholePathAllocs runs complete HTTP requests: fasthttp client -> in-memory listener -> fasthttp server ->
// ingress -> pool -> rsocket over an in-memory pipe -> demo handler, and back. Everything runs in this
// process, so AllocsPerRun counts the client and the backend too. The budget is the backend's own share,
// measured the same way (the same rsocket request-response made directly on a pool connection): the
// gateway side, HTTP parsing and writing included, allocates nothing per request.
func TestWholePathAllocs(t *testing.T) {
	p := newInProcess(t, metrics.NewSet())
	client := p.serveInMemory(t, 1)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	do := func(method, uri string, body []byte, want int) func() {
		return func() {
			req.Reset()
			req.SetRequestURI(uri)
			req.Header.SetMethod(method)
			if body != nil {
				req.Header.SetContentType("application/json")
				req.SetBody(body)
			}
			if err := client.Do(req, resp); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != want {
				t.Fatalf("%s %s: status %d %q", method, uri, resp.StatusCode(), resp.Body())
			}
		}
	}
	measure := func(f func()) float64 {
		for range 200 { // warm every pool on the path
			f()
		}
		return testing.AllocsPerRun(1000, f)
	}

	// The backend's share: the demo echo request-response made directly on a pool connection.
	md, err := appendRequestMetadata(nil, p.st.routes[p.st.table.Route("echo").Index], new(mapping.Params),
		&metaRequest{method: []byte("POST"), target: []byte("/api/echo"), header: &req.Header})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"hello":"rsgate","n":12345}`)
	pl := p.pools.Get("demo")
	base := measure(func() {
		m, err := pl.Pick()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		msg, _, err := m.Conn().RequestResponse(context.Background(), rsocket.Payload{Metadata: md, Data: body})
		m.Done(start, err)
		if err != nil {
			t.Fatal(err)
		}
		msg.Release()
	})

	for _, c := range []struct {
		name, method, uri string
		body              []byte
		want              int
	}{
		{"POST /api/echo", "POST", "http://gateway/api/echo", body, 200},
		{"GET /api/users/{id}", "GET", "http://gateway/api/users/42", nil, 200},
		{"404", "GET", "http://gateway/nope", nil, 404},
	} {
		n := measure(do(c.method, c.uri, c.body, c.want))
		t.Logf("%s: %v allocs per request through the whole path; the backend's request-response alone: %v", c.name, n, base)
		switch {
		case c.want == 404 && n != 0: // no backend involved
			t.Errorf("%s: %v allocs per request, want 0", c.name, n)
		case n > base:
			t.Errorf("%s: %v allocs per request, want at most the backend's %v: the gateway side allocates", c.name, n, base)
		}
	}
}
