package ingress

import (
	"context"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
)

const (
	testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceHigh   = 0x4bf92f3577b34da6
	testTraceLow    = 0xa3ce929d0e0e4736
	testSpanID      = 0x00f067aa0ba902b7
)

// checkTestTrace checks that z is testTraceparent as zipkin: 128-bit trace id, the caller's span, sampled.
func checkTestTrace(t *testing.T, what string, z extension.Zipkin) {
	t.Helper()
	want := extension.ZipkinFlagIDsSet | extension.ZipkinFlagTraceID128 | extension.ZipkinFlagSampled
	if z.Flags != want || z.TraceIDHigh != testTraceHigh || z.TraceID != testTraceLow || z.SpanID != testSpanID || z.ParentID != 0 {
		t.Errorf("%s: zipkin %+v, want flags %#x trace %x%x span %x", what, z, want, uint64(testTraceHigh), uint64(testTraceLow), uint64(testSpanID))
	}
}

func TestTraceparentMetadataEntry(t *testing.T) {
	rt, ps, mr := metadataFixture(t)
	without, err := appendRequestMetadata(nil, rt, ps, mr)
	if err != nil {
		t.Fatal(err)
	}
	mr.header.Set("Traceparent", testTraceparent)
	with, err := appendRequestMetadata(nil, rt, ps, mr)
	if err != nil {
		t.Fatal(err)
	}
	// Order: routing, auth, tracing, gateway entry; the other entries are unchanged.
	var ids []string
	it := extension.NewCompositeIter(with)
	for it.Next() {
		e := it.Entry()
		ids = append(ids, e.MimeString())
		if e.WellKnown && e.MimeID == extension.IDTracingZipkin {
			z, err := extension.ParseZipkin(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			checkTestTrace(t, "entry", z)
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	wantIDs := []string{extension.MimeRouting, extension.MimeAuth, extension.MimeTracingZipkin, MimeGateway}
	if len(ids) != len(wantIDs) {
		t.Fatalf("entries %v, want %v", ids, wantIDs)
	}
	for i := range ids {
		if ids[i] != wantIDs[i] {
			t.Fatalf("entries %v, want %v", ids, wantIDs)
		}
	}
	// 4 bytes of entry header + 25 bytes of zipkin value (flags, 128-bit trace id, span id).
	if len(with) != len(without)+4+25 {
		t.Fatalf("metadata grew by %d bytes, want 29", len(with)-len(without))
	}

	// Invalid values are ignored: the metadata is exactly what it is without the header.
	for _, bad := range []string{
		"",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 with extra fields
		"garbage",
	} {
		mr.header.Set("Traceparent", bad)
		got, err := appendRequestMetadata(nil, rt, ps, mr)
		if err != nil || string(got) != string(without) {
			t.Errorf("traceparent %q: metadata changed (%v)", bad, err)
		}
	}

	// Plain routing metadata has no room for it.
	mr.header.Set("Traceparent", testTraceparent)
	r2 := *rt
	r2.mdKind = mdRouting
	if md, err := appendRequestMetadata(nil, &r2, ps, mr); err != nil || string(md) != "\x08users.42" {
		t.Fatalf("routing-only metadata %q, %v", md, err)
	}
	// A route with nothing else to send still sends the tracing entry alone.
	r2 = *rt
	r2.forward, r2.forwardAuth = nil, false
	r2.cr = &mapping.CompiledRoute{Route: rt.cr.Route}
	md, err := appendRequestMetadata(nil, &r2, ps, mr)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := extension.FindCompositeID(md, extension.IDTracingZipkin)
	if !ok || len(md) != 4+25 {
		t.Fatalf("tracing-only metadata %x", md)
	}
	z, err := extension.ParseZipkin(v)
	if err != nil {
		t.Fatal(err)
	}
	checkTestTrace(t, "tracing only", z)
}

// traceSeen is what a tracing backend saw in one request's metadata.
type traceSeen struct {
	who, kind string
	z         extension.Zipkin
	found     bool
}

// traceBackend records the zipkin entry of every request (seen) and answers each interaction minimally.
func traceBackend(who string, seen chan<- traceSeen) func() rsocket.Handler {
	note := func(kind string, md []byte) {
		s := traceSeen{who: who, kind: kind}
		if v, ok := extension.FindCompositeID(md, extension.IDTracingZipkin); ok {
			z, err := extension.ParseZipkin(v)
			s.z, s.found = z, err == nil
		}
		seen <- s
	}
	return func() rsocket.Handler {
		return &rsocket.HandlerFuncs{
			FireAndForgetFunc: func(req rsocket.Payload) { note("fnf", req.Metadata) },
			RequestResponseFunc: func(req rsocket.Payload, s *rsocket.Stream) {
				note("rr", req.Metadata)
				_ = s.Respond(rsocket.Payload{Data: []byte(`{"ok":true}`)})
			},
			RequestStreamFunc: func(req rsocket.Payload, n uint32, s *rsocket.Stream) {
				note("stream", req.Metadata)
				go func() {
					_ = s.Send(context.Background(), rsocket.Payload{Data: []byte(`{"i":0}`)})
					_ = s.Complete()
				}()
			},
			RequestChannelFunc: func(req rsocket.Payload, n uint32, complete bool, s *rsocket.Stream) rsocket.Subscriber {
				note("channel", req.Metadata)
				go func() { _ = s.Send(context.Background(), rsocket.Payload{Data: []byte(`{"i":0}`)}) }()
				return nil
			},
		}
	}
}

// A request with a traceparent header reaches the backend with the zipkin entry, for every interaction
// and for the shadow copy; one without it, or with an invalid one, reaches it without.
func TestTraceparentForwarded(t *testing.T) {
	seen := make(chan traceSeen, 64)
	primary := startBackend(t, traceBackend("primary", seen))
	shadow := startBackend(t, traceBackend("shadow", seen))
	cfg := newConfig(map[string]string{"primary": primary.addr, "shadow": shadow.addr}, []routeSpec{
		{name: "rr", method: "POST", path: "/rr", backend: "primary", interaction: mapping.InteractionRequestResponse, tag: "rr"},
		{name: "fnf", method: "POST", path: "/fnf", backend: "primary", interaction: mapping.InteractionFireAndForget, tag: "fnf"},
		{name: "stream", method: "GET", path: "/stream", backend: "primary", interaction: mapping.InteractionRequestStream, tag: "stream"},
		{name: "chat", method: "GET", path: "/chat", backend: "primary", interaction: mapping.InteractionRequestChannel, tag: "chat"},
		{name: "shadowed", method: "POST", path: "/shadowed", backend: "primary", interaction: mapping.InteractionRequestResponse, tag: "rr",
			mutate: func(r *mapping.Route) { r.Shadow = mapping.NewShadow("shadow") }},
	})
	g := startGateway(t, cfg, Options{})

	next := func(what string) traceSeen {
		t.Helper()
		select {
		case s := <-seen:
			return s
		case <-time.After(testTimeout):
			t.Fatalf("%s: the backend saw no request", what)
		}
		return traceSeen{}
	}
	expect := func(what, who, kind string, traced bool) {
		t.Helper()
		s := next(what)
		if s.who != who || s.kind != kind {
			t.Fatalf("%s: backend %s saw %s, want %s %s", what, s.who, s.kind, who, kind)
		}
		if s.found != traced {
			t.Fatalf("%s: tracing entry present %v, want %v", what, s.found, traced)
		}
		if traced {
			checkTestTrace(t, what, s.z)
		}
	}

	tp := []string{"traceparent", testTraceparent}
	if r := g.do("POST", "/rr", "x", tp...); r.status != 200 {
		t.Fatalf("rr: %d %q", r.status, r.body)
	}
	expect("request-response", "primary", "rr", true)
	if r := g.do("POST", "/rr", "x"); r.status != 200 {
		t.Fatalf("rr: %d", r.status)
	}
	expect("request-response without traceparent", "primary", "rr", false)
	if r := g.do("POST", "/rr", "x", "traceparent", "00-zz-00f067aa0ba902b7-01"); r.status != 200 {
		t.Fatalf("rr with an invalid traceparent: %d", r.status)
	}
	expect("request-response with an invalid traceparent", "primary", "rr", false)

	if r := g.do("POST", "/fnf", "x", tp...); r.status != 202 {
		t.Fatalf("fnf: %d %q", r.status, r.body)
	}
	expect("fire-and-forget", "primary", "fnf", true)

	if r := g.do("GET", "/stream", "", tp...); r.status != 200 || r.body != "{\"i\":0}\n" {
		t.Fatalf("stream: %d %q", r.status, r.body)
	}
	expect("request-stream", "primary", "stream", true)

	ws := dialWS(t, wsURL(g, "/chat"), map[string][]string{"Traceparent": {testTraceparent}})
	if err := ws.WriteMessage(1, []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"i":0}` {
		t.Fatalf("channel message %q, %v", msg, err)
	}
	expect("request-channel", "primary", "channel", true)
	_ = ws.Close()

	if r := g.do("POST", "/shadowed", "x", tp...); r.status != 200 {
		t.Fatalf("shadowed: %d %q", r.status, r.body)
	}
	a, b := next("shadowed"), next("shadowed copy")
	if a.who == "shadow" {
		a, b = b, a
	}
	if a.who != "primary" || b.who != "shadow" || a.kind != "rr" || b.kind != "rr" || !a.found || !b.found {
		t.Fatalf("shadowed request: %+v and %+v", a, b)
	}
	checkTestTrace(t, "served copy", a.z)
	checkTestTrace(t, "shadow copy", b.z)
}
