package ingress

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// TestReloadUnderLoadFailsNothing: 20 reloads that change the backend (a new pool each time) while
// clients keep sending requests: not one request fails. The new pool is switched to only once it has a
// ready connection, and requests in flight on the old one finish there.
func TestReloadUnderLoadFailsNothing(t *testing.T) {
	d := startDemo(t)
	routes := []routeSpec{
		{name: "users", method: "GET", path: "/api/users/{id}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "users.{id}"},
		{name: "slow", method: "GET", path: "/api/slow/{ms}", backend: "demo", interaction: mapping.InteractionRequestResponse, tag: "slow.{ms}"},
	}
	mk := func(i int) *mapping.Config {
		cfg := newConfig(map[string]string{"demo": d.Addr().String()}, routes)
		// A setting the pool is built from: every reload replaces the pool.
		cfg.Backends["demo"].Keepalive = mapping.Duration(time.Duration(10+i) * time.Second)
		cfg.Backends["demo"].Connections = 1 + i%2
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// Dials take 100 ms, as to a backend across a network: a pool switched to before it is ready would
	// fail the requests meanwhile (503 NO_CONNECTION).
	slowDial := func(ctx context.Context, addr string) (transport.Conn, error) {
		time.Sleep(100 * time.Millisecond)
		return transport.DialTCP(ctx, addr, nil)
	}
	g := startGatewayPools(t, mk(0), pool.Options{Dialer: slowDial})

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/api/users/1"
				if i%4 == 0 {
					path = "/api/slow/20" // in flight across a swap: finishes on the old pool
				}
				r := g.do("GET", path, "")
				if r.status == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("GET %s: %d %q", path, r.status, r.body)
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		cfg := mk(i)
		table, err := mapping.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		old := g.pools.Get("demo")
		if err := g.pools.Update(cfg); err != nil {
			t.Fatal(err)
		}
		if err := g.srv.Update(cfg, table); err != nil {
			t.Fatal(err)
		}
		if g.pools.Get("demo") == old {
			t.Fatalf("reload %d kept the pool: the test needs a changed backend", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("%d requests failed, %d succeeded over 20 reloads", failed.Load(), ok.Load())
	}
	t.Logf("%d requests, 0 failed, over 20 reloads", ok.Load())
}

// startGatewayPools is startGateway with pool options (the harness builds its pools with the defaults).
func startGatewayPools(t *testing.T, cfg *mapping.Config, po pool.Options) *gateway {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	table, err := mapping.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := startGatewayWith(t, cfg, table, po)
	g.waitReady()
	return g
}
