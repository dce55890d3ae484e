package pool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/mapping"
)

func testConfig(backends ...*mapping.Backend) *mapping.Config {
	cfg := &mapping.Config{Backends: map[string]*mapping.Backend{}}
	for _, b := range backends {
		cfg.Backends[b.Name] = b
	}
	return cfg
}

func TestGroupAndMetrics(t *testing.T) {
	set := metrics.NewSet()
	opts := Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil), Metrics: set, DrainTimeout: 2 * time.Second}
	web := testBackend("web", "http://127.0.0.1:1")
	web.Transport = mapping.TransportHTTP
	keep, change, drop := testBackend("keep", "10.0.0.1:1"), testBackend("change", "10.0.0.2:1"), testBackend("drop", "10.0.0.3:1")
	g, err := NewGroup(testConfig(keep, change, drop, web), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Get("web") != nil || !slicesEqual(g.Skipped(), []string{"web"}) {
		t.Fatalf("http backend: Get %v, Skipped %v", g.Get("web"), g.Skipped())
	}
	if g.Get("nope") != nil || g.Get("keep") == nil || g.Get("keep").Name() != "keep" {
		t.Fatal("Get by name")
	}
	g.Start()
	testutil.EventuallyWithin(t, 5*time.Second, g.Ready, "all pools ready")
	if st := g.Stats(); len(st) != 3 || st[0].Backend != "change" || !st[2].Ready {
		t.Fatalf("Stats: %+v", st)
	}
	js, err := json.Marshal(g.Stats())
	if err != nil || !strings.Contains(string(js), `"state":"ready"`) || !strings.Contains(string(js), `"backend":"keep"`) {
		t.Fatalf("Stats JSON: %s, %v", js, err)
	}

	kept, changed, dropped := g.Get("keep"), g.Get("change"), g.Get("drop")
	m, err := kept.Pick()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{
		`rsgate_backend_connections{backend="keep"} 1`,
		`rsgate_backend_inflight{backend="keep"} 1`,
		`rsgate_backend_reconnects_total{backend="drop"} 0`,
		`rsgate_backend_pick_errors_total{backend="keep",reason="overloaded"} 0`,
		`rsgate_backend_ewma_latency_seconds{backend="change"} 0`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, out.String())
		}
	}
	m.Done(time.Now(), nil)

	// Reload: keep unchanged, replace changed, remove dropped, add new.
	keep2 := testBackend("keep", "10.0.0.1:1")
	keep2.Line = 42 // moved in the file: not a change
	change2 := testBackend("change", "10.0.0.2:1")
	change2.Connections = 3
	added := testBackend("added", "10.0.0.4:1")
	if err := g.Update(testConfig(keep2, change2, added)); err != nil {
		t.Fatal(err)
	}
	if g.Get("keep") != kept {
		t.Error("unchanged backend got a new pool")
	}
	if g.Get("change") == changed || g.Get("change") == nil || g.Get("drop") != nil || g.Get("added") == nil {
		t.Fatal("Update did not replace/remove/add pools")
	}
	testutil.EventuallyWithin(t, 5*time.Second, g.Ready, "new pools ready")
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return readyConns(g.Get("change")) == 3 }, "3 connections for the changed backend")
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return !changed.Ready() && !dropped.Ready() }, "retired pools closed")
	if _, err := dropped.Pick(); err == nil {
		t.Fatal("a removed backend's pool still picks")
	}
	out.Reset()
	set.WritePrometheus(&out)
	if !strings.Contains(out.String(), `rsgate_backend_connections{backend="change"} 3`) {
		t.Errorf("the changed backend's metrics do not follow the new pool:\n%s", out.String())
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool {
		out.Reset()
		set.WritePrometheus(&out)
		return !strings.Contains(out.String(), `backend="drop"`)
	}, "dropped backend's metrics unregistered")

	// A bad config changes nothing.
	bad := testBackend("keep", "no-port")
	if err := g.Update(testConfig(bad)); err == nil {
		t.Fatal("Update accepted a bad backend")
	}
	if g.Get("keep") != kept || g.Get("added") == nil {
		t.Fatal("a failed Update changed the pools")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if kept.Ready() {
		t.Fatal("Close left a pool ready")
	}
	if err := g.Update(testConfig(keep2)); err == nil {
		t.Fatal("Update after Close succeeded")
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestGroupShutdown(t *testing.T) {
	g, err := NewGroup(testConfig(testBackend("a", "10.0.0.1:1"), testBackend("b", "10.0.0.2:1")),
		Options{Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	testutil.EventuallyWithin(t, 5*time.Second, g.Ready, "ready")
	m, err := g.Get("a").Pick()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx)
	}()
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return !g.Get("b").Ready() }, "b closed")
	if _, err := g.Get("a").Pick(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick during Shutdown: %v, want ErrClosed", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	m.Done(time.Now(), nil)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := g.Update(testConfig(testBackend("a", "10.0.0.1:1"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Shutdown: %v", err)
	}
}
