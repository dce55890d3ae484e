package ingress

import (
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rsgate/rsgate/mapping"
)

// splitConfig: GET /api/{kind}/{id} routes over the demo RSocket service (users.{id}) and the legacy
// service (/v1/users/{id}, which marks its answers with X-Backend: legacy).
func splitConfig(demoAddr, legacyURL string, legacyWeight, rsWeight int) *mapping.Config {
	split := func(sticky *mapping.Sticky) func(r *mapping.Route) {
		return func(r *mapping.Route) {
			r.Rewrite = "/v1/users/{id}"
			r.Split = []mapping.SplitTarget{{Backend: "users-legacy", Weight: legacyWeight}, {Backend: "users-rsocket", Weight: rsWeight}}
			r.Sticky = sticky
		}
	}
	cfg := newConfig(map[string]string{"users-rsocket": demoAddr}, []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "users-rsocket", interaction: mapping.InteractionRequestResponse,
			tag: "users.{id}", mutate: split(nil)},
		{name: "sticky", method: "GET", path: "/api/sticky/{id}", backend: "users-rsocket", interaction: mapping.InteractionRequestResponse,
			tag: "users.{id}", mutate: split(&mapping.Sticky{Header: "X-User-Id"})},
		{name: "cookie", method: "GET", path: "/api/cookie/{id}", backend: "users-rsocket", interaction: mapping.InteractionRequestResponse,
			tag: "users.{id}", mutate: split(&mapping.Sticky{Cookie: "uid"})},
	})
	addHTTPBackend(cfg, "users-legacy", legacyURL)
	return cfg
}

// fromLegacy fetches path and reports whether the legacy service answered; both answer {"id":"<id>"}.
func fromLegacy(t *testing.T, g *gateway, path string, hdr ...string) bool {
	t.Helper()
	req, err := http.NewRequest("GET", g.base+path, nil)
	if err != nil {
		t.Error(err)
		return false
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Error(err)
		return false
	}
	defer resp.Body.Close()
	var buf [64]byte
	n, _ := resp.Body.Read(buf[:])
	id := path[strings.LastIndexByte(path, '/')+1:]
	if resp.StatusCode != 200 || string(buf[:n]) != `{"id":"`+id+`"}` {
		t.Errorf("%s: %d %q", path, resp.StatusCode, buf[:n])
	}
	return resp.Header.Get("X-Backend") == "legacy"
}

func TestSplitWeights(t *testing.T) {
	d, l := startDemo(t), startLegacy(t)
	g := startGateway(t, splitConfig(d.Addr().String(), l.url, 90, 10), Options{})
	const total, workers = 2000, 4
	var legacy, done int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := 0; i < total/workers; i++ {
				if fromLegacy(t, g, "/api/users/"+strconv.Itoa(i)) {
					n++
				}
			}
			mu.Lock()
			legacy += n
			done += total / workers
			mu.Unlock()
		}()
	}
	wg.Wait()
	frac := float64(legacy) / float64(done)
	// Binomial(2000, 0.9): sd 0.0067; the bounds are 4.5 sd away.
	if frac < 0.87 || frac > 0.93 {
		t.Errorf("legacy share %.3f over %d requests, want 0.90 +- 0.03", frac, done)
	}
	legacyCount := g.set.GetOrCreateCounter(`rsgate_split_requests_total{route="users",backend="users-legacy"}`).Get()
	rsCount := g.set.GetOrCreateCounter(`rsgate_split_requests_total{route="users",backend="users-rsocket"}`).Get()
	if int(legacyCount) != legacy || int(legacyCount+rsCount) != done {
		t.Errorf("split counters legacy %d rsocket %d, observed %d of %d", legacyCount, rsCount, legacy, done)
	}
}

func TestSplitSticky(t *testing.T) {
	d, l := startDemo(t), startLegacy(t)
	cfg := splitConfig(d.Addr().String(), l.url, 90, 10)
	g := startGateway(t, cfg, Options{})
	const users = 200
	choice := make([]bool, users)
	onLegacy := 0
	for u := 0; u < users; u++ {
		uid := "user-" + strconv.Itoa(u)
		choice[u] = fromLegacy(t, g, "/api/sticky/1", "X-User-Id", uid)
		if choice[u] {
			onLegacy++
		}
		for i := 0; i < 3; i++ {
			if got := fromLegacy(t, g, "/api/sticky/"+strconv.Itoa(i), "X-User-Id", uid); got != choice[u] {
				t.Fatalf("%s: request %d went to legacy=%v, first went to legacy=%v", uid, i, got, choice[u])
			}
		}
		// The cookie flavour is consistent too.
		first := fromLegacy(t, g, "/api/cookie/1", "Cookie", "uid="+uid)
		if fromLegacy(t, g, "/api/cookie/2", "Cookie", "a=b; uid="+uid) != first {
			t.Fatalf("%s: cookie stickiness broken", uid)
		}
	}
	// Binomial(200, 0.9): sd 0.021.
	if frac := float64(onLegacy) / users; frac < 0.80 || frac > 0.97 {
		t.Errorf("sticky keys on legacy: %.3f, want about 0.90", frac)
	}

	// A reload moving weight to the RSocket backend keeps every key that was already there (the hash
	// point is scaled, not taken modulo the total) and moves some of the others.
	table, err := mapping.Compile(splitConfig(d.Addr().String(), l.url, 50, 50))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Update(table.Config(), table); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for u := 0; u < users; u++ {
		now := fromLegacy(t, g, "/api/sticky/1", "X-User-Id", "user-"+strconv.Itoa(u))
		if !choice[u] && now {
			t.Errorf("user-%d moved back from rsocket to legacy after the reload", u)
		}
		if choice[u] && !now {
			moved++
		}
	}
	if moved == 0 {
		t.Error("the reload to 50/50 moved no key to the RSocket backend")
	}
}

// TestSplitHashSpread: sticky keys spread over the targets in proportion to their weights.
func TestSplitHashSpread(t *testing.T) {
	var legacy int
	for i := 0; i < 10000; i++ {
		if x, _ := bits.Mul64(hashKey([]byte("k"+strconv.Itoa(i))), 100); x < 90 {
			legacy++
		}
	}
	if legacy < 8800 || legacy > 9200 {
		t.Errorf("hash spread over 90/10: %d of 10000 on the first target", legacy)
	}
}
