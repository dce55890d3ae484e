package pool

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/rsgate/rsgate/mapping"
	"go.uber.org/zap"
)

// Group holds the pools of every backend of a configuration, by backend name: a *Pool for each RSocket
// backend (Get) and an *HTTPPool for each backend with transport "http" (HTTP; Get returns nil for them and
// Skipped lists them). Get and HTTP are lock-free and safe to call per request; the other methods are safe
// for concurrent use.
type Group struct {
	opts  Options
	pools atomic.Pointer[map[string]*Pool]
	https atomic.Pointer[map[string]*HTTPPool] // transport http (http.go)

	mu      sync.Mutex // serialises Start, Update and Close
	started bool
	closed  bool
	skipped []string
	retired sync.WaitGroup // old pools draining after Update
}

// NewGroup builds (without dialling) a pool for every tcp and websocket backend of cfg.
func NewGroup(cfg *mapping.Config, opts Options) (*Group, error) {
	g := &Group{opts: opts}
	pools, skipped, err := g.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	hps, err := g.buildHTTP(cfg, nil)
	if err != nil {
		for _, p := range pools {
			_ = p.Close()
		}
		return nil, err
	}
	g.pools.Store(&pools)
	g.https.Store(&hps)
	g.skipped = skipped
	return g, nil
}

// build makes the pools for cfg, reusing from old those whose backend settings did not change. On error
// the pools it created are closed and old is untouched.
func (g *Group) build(cfg *mapping.Config, old map[string]*Pool) (map[string]*Pool, []string, error) {
	pools := make(map[string]*Pool, len(cfg.Backends))
	var created []*Pool
	var skipped []string
	for name, b := range cfg.Backends {
		if b == nil {
			continue
		}
		if b.Transport == mapping.TransportHTTP {
			skipped = append(skipped, name)
			continue
		}
		bc := *b
		bc.Name = name
		if p := old[name]; p != nil && sameBackend(p.Backend(), &bc) {
			pools[name] = p
			continue
		}
		p, err := New(&bc, g.opts)
		if err != nil {
			for _, c := range created {
				_ = c.Close()
			}
			return nil, nil, err
		}
		created = append(created, p)
		pools[name] = p
	}
	sort.Strings(skipped)
	return pools, skipped, nil
}

// sameBackend reports whether two backend configurations lead to the same pool (the YAML line and
// mapping's default filling aside).
func sameBackend(cur, next *mapping.Backend) bool {
	n, err := New(next, Options{})
	if err != nil {
		return false
	}
	a, b := *cur, n.backend
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// Get returns the pool of the named backend, or nil when there is none (unknown name or an http backend).
func (g *Group) Get(name string) *Pool { return (*g.pools.Load())[name] }

// Pools returns the pools sorted by backend name.
func (g *Group) Pools() []*Pool {
	m := *g.pools.Load()
	out := make([]*Pool, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Skipped returns the names of the backends that have no pool here (transport http).
func (g *Group) Skipped() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.skipped)
}

// Stats returns every pool's Stats, sorted by backend name.
func (g *Group) Stats() []Stats {
	pools := g.Pools()
	out := make([]Stats, len(pools))
	for i, p := range pools {
		out[i] = p.Stats()
	}
	return out
}

// Ready reports whether every pool has at least one ready connection, and every http backend at least
// one address not marked down (for /readyz).
func (g *Group) Ready() bool {
	for _, p := range *g.pools.Load() {
		if !p.Ready() {
			return false
		}
	}
	for _, p := range *g.https.Load() {
		if !p.Ready() {
			return false
		}
	}
	return true
}

// Start starts every pool.
func (g *Group) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return
	}
	g.started = true
	for _, p := range *g.pools.Load() {
		p.Start()
	}
	for _, p := range *g.https.Load() {
		p.Start()
	}
}

// Update switches to cfg (SIGHUP reload). Pools whose backend settings are unchanged are kept with their
// connections; changed and new backends get new pools (started if the group is started); the pools they
// replace, and those of removed backends, stop taking picks at once and close when their in-flight
// requests are done (at most Options.DrainTimeout). If any new pool cannot be built, nothing changes and
// the error is returned.
func (g *Group) Update(cfg *mapping.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	old := *g.pools.Load()
	pools, skipped, err := g.build(cfg, old)
	if err != nil {
		return err
	}
	oldHTTP := *g.https.Load()
	hps, err := g.buildHTTP(cfg, oldHTTP)
	if err != nil {
		for name, p := range pools {
			if old[name] != p {
				_ = p.Close()
			}
		}
		return err
	}
	if g.started {
		for _, p := range pools {
			p.Start() // no-op for kept pools
		}
		for _, p := range hps {
			p.Start()
		}
	}
	g.pools.Store(&pools)
	g.https.Store(&hps)
	g.skipped = skipped
	for name, p := range oldHTTP {
		if hps[name] != p {
			_ = p.Close() // requests in flight finish on their connections
		}
	}
	drain := g.opts.DrainTimeout
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	for name, p := range old {
		if pools[name] == p {
			continue
		}
		g.retired.Add(1)
		go func() {
			defer g.retired.Done()
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil && g.opts.Logger != nil {
				g.opts.Logger.Warn("replaced backend pool closed with requests in flight",
					zap.String("backend", name), zap.Error(err))
			}
		}()
	}
	return nil
}

// Close closes every pool (in-flight streams fail) and waits for pools retired by Update.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	pools := *g.pools.Load()
	g.mu.Unlock()
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.Close())
	}
	for _, p := range *g.https.Load() {
		errs = append(errs, p.Close())
	}
	g.retired.Wait()
	return errors.Join(errs...)
}

// Shutdown stops new picks on every pool, waits for in-flight requests until ctx ends, then closes.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	pools := *g.pools.Load()
	g.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 0, len(pools))
	var mu sync.Mutex
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, p := range *g.https.Load() {
		_ = p.Close()
	}
	g.retired.Wait()
	return errors.Join(errs...)
}
