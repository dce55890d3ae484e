package ingress

import (
	"strconv"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

func shadowCount(g *gateway, route, result string) uint64 {
	return g.set.GetOrCreateCounter(`rsgate_shadow_requests_total{route="` + route + `",result="` + result + `"}`).Get()
}

func waitShadow(t *testing.T, g *gateway, route, result string, want uint64) {
	t.Helper()
	testutil.Eventually(t, func() bool { return shadowCount(g, route, result) >= want }, route+" "+result+" = "+strconv.FormatUint(want, 10))
	if got := shadowCount(g, route, result); got != want {
		t.Errorf("%s %s = %d, want %d", route, result, got, want)
	}
}

// shadowGateway: legacy http routes shadowed to the demo service (users.{id}) and to a backend that is
// slow or never answers, and an RSocket route shadowed to the legacy service.
func shadowGateway(t *testing.T) (*gateway, *legacyService) {
	d, l := startDemo(t), startLegacy(t)
	sp := startBackend(t, newSpecial().handler)
	shadow := func(tag, backend string, mut func(s *mapping.Shadow)) func(r *mapping.Route) {
		return func(r *mapping.Route) {
			r.Rewrite, r.Route = "/v1/users/{id}", tag
			r.Shadow = mapping.NewShadow(backend)
			if mut != nil {
				mut(r.Shadow)
			}
		}
	}
	cfg := newConfig(map[string]string{"demo": d.Addr().String(), "special": sp.addr}, []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: shadow("users.{id}", "demo", nil)},
		{name: "slow", method: "GET", path: "/api/slow/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: shadow("sleep.{id}", "special", func(s *mapping.Shadow) { s.MaxConcurrency = 1; s.Timeout = mapping.Duration(5 * time.Second) })},
		{name: "hang", method: "GET", path: "/api/hang/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: shadow("hang", "special", func(s *mapping.Shadow) { s.Timeout = mapping.Duration(300 * time.Millisecond) })},
		{name: "reverse", method: "GET", path: "/api/rs/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse,
			tag: "users.{id}", mutate: shadow("users.{id}", "legacy", nil)},
		{name: "fnf", method: "GET", path: "/api/fnf/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: shadow("log", "demo", func(s *mapping.Shadow) { s.Mode, s.Compare = mapping.ShadowFireAndForget, false })},
		{name: "sampled", method: "GET", path: "/api/sampled/{id}", backend: "legacy", interaction: mapping.InteractionHTTP,
			mutate: shadow("users.{id}", "demo", func(s *mapping.Shadow) { s.Percent = 20 })},
	})
	addHTTPBackend(cfg, "legacy", l.url)
	return startGateway(t, cfg, Options{}), l
}

func TestShadowCompare(t *testing.T) {
	g, _ := shadowGateway(t)
	// Same answer from both: match. Different body: mismatch. Different status class: mismatch.
	for path, want := range map[string]int{"/api/users/42": 200, "/api/users/diff": 200, "/api/users/missing": 404} {
		if r := g.do("GET", path, ""); r.status != want || r.header.Get("X-Backend") != "legacy" {
			t.Errorf("%s: %d %v (served by the primary)", path, r.status, r.header)
		}
	}
	waitShadow(t, g, "users", "match", 1)
	waitShadow(t, g, "users", "mismatch", 2)
	// The other way around: an RSocket route shadowed to the legacy service.
	if r := g.do("GET", "/api/rs/7", ""); r.status != 200 || r.body != `{"id":"7"}` || r.header.Get("X-Backend") != "" {
		t.Errorf("reverse: %d %q %v", r.status, r.body, r.header)
	}
	waitShadow(t, g, "reverse", "match", 1)
	// Fire-and-forget copies are only counted as sent.
	if r := g.do("GET", "/api/fnf/1", ""); r.status != 200 {
		t.Errorf("fnf: %d", r.status)
	}
	waitShadow(t, g, "fnf", "sent", 1)
	if n := shadowCount(g, "users", "error") + shadowCount(g, "users", "dropped"); n != 0 {
		t.Errorf("users error+dropped = %d", n)
	}
}

func TestShadowNeverSlowsOrFails(t *testing.T) {
	g, _ := shadowGateway(t)
	// A shadow that never answers: the client is served at once, the copy times out and counts as error.
	start := time.Now()
	if r := g.do("GET", "/api/hang/1", ""); r.status != 200 || r.body != `{"id":"1"}` {
		t.Errorf("hang: %d %q", r.status, r.body)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("served request took %v with a hanging shadow", d)
	}
	waitShadow(t, g, "hang", "error", 1)

	// max_concurrency 1 and a shadow that takes 600ms: the first copy runs, the next ones are dropped,
	// and every served request stays fast.
	for i := 0; i < 5; i++ {
		start := time.Now()
		if r := g.do("GET", "/api/slow/600", ""); r.status != 200 || r.body != `{"id":"600"}` {
			t.Fatalf("slow %d: %d %q", i, r.status, r.body)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("served request %d took %v behind a slow shadow", i, d)
		}
	}
	if n := shadowCount(g, "slow", "dropped"); n < 3 {
		t.Errorf("dropped = %d, want >= 3 of the 4 copies made while the first ran", n)
	}
	// The copy that ran ends (the special backend echoes an empty body: a mismatch) and frees the slot.
	waitShadow(t, g, "slow", "mismatch", 1)
	dropped := shadowCount(g, "slow", "dropped")
	if r := g.do("GET", "/api/slow/1", ""); r.status != 200 {
		t.Fatalf("slow after: %d", r.status)
	}
	waitShadow(t, g, "slow", "mismatch", 2)
	if shadowCount(g, "slow", "dropped") != dropped {
		t.Error("a copy was dropped with the slot free")
	}
}

// TestShadowPercent: shadow.percent samples the copies.
func TestShadowPercent(t *testing.T) {
	g, _ := shadowGateway(t)
	const n = 300
	for i := 0; i < n; i++ {
		if r := g.do("GET", "/api/sampled/"+strconv.Itoa(i), ""); r.status != 200 {
			t.Fatalf("%d: %d", i, r.status)
		}
	}
	// Every copy that was made matches; wait until the count settles, then check the share.
	var copies uint64
	testutil.Eventually(t, func() bool {
		before := shadowCount(g, "sampled", "match")
		time.Sleep(50 * time.Millisecond)
		copies = shadowCount(g, "sampled", "match")
		return copies == before
	}, "sampled copies settle")

	// Binomial(300, 0.2): mean 60, sd 6.9.
	if copies < 35 || copies > 85 {
		t.Errorf("%d of %d requests copied at percent 20", copies, n)
	}
	if m := shadowCount(g, "sampled", "mismatch") + shadowCount(g, "sampled", "error"); m != 0 {
		t.Errorf("sampled mismatches+errors = %d", m)
	}
}
