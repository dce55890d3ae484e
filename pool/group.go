package pool

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

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

// NewGroup builds (without dialling) a pool for every backend of cfg.
func NewGroup(cfg *mapping.Config, opts Options) (*Group, error) {
	g := &Group{opts: opts}
	b, err := g.build(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	g.pools.Store(&b.pools)
	g.https.Store(&b.https)
	g.skipped = b.skipped
	return g, nil
}

// backendPool is what the Group does with both kinds of pool (*Pool, *HTTPPool).
type backendPool interface {
	Start()
	Close() error
	Ready() bool
	Backend() *mapping.Backend
}

// poolKind builds one kind of pool: which backends it serves, how to build one, and whether a running
// pool can be kept for a new backend configuration.
type poolKind[P backendPool] struct {
	serves func(*mapping.Backend) bool
	build  func(*mapping.Backend, Options) (P, error)
	same   func(cur, next *mapping.Backend) bool
}

var (
	rsocketKind = poolKind[*Pool]{
		serves: func(b *mapping.Backend) bool { return b.Transport != mapping.TransportHTTP },
		build:  New,
		same:   sameBackend,
	}
	httpKind = poolKind[*HTTPPool]{
		serves: func(b *mapping.Backend) bool { return b.Transport == mapping.TransportHTTP },
		build:  NewHTTP,
		same:   sameHTTPBackend,
	}
)

// buildKind makes the pools of kind k for cfg, reusing from old those whose backend settings did not
// change. It returns the new set and the pools it created; on error it closes those and old is untouched.
func buildKind[P backendPool](k poolKind[P], cfg *mapping.Config, old map[string]P, opts Options) (map[string]P, []backendPool, error) {
	out := map[string]P{}
	var created []backendPool
	for name, b := range cfg.Backends {
		if b == nil || !k.serves(b) {
			continue
		}
		bc := *b
		bc.Name = name
		if p, ok := old[name]; ok && k.same(p.Backend(), &bc) {
			out[name] = p
			continue
		}
		p, err := k.build(&bc, opts)
		if err != nil {
			closeAll(created)
			return nil, nil, err
		}
		created = append(created, p)
		out[name] = p
	}
	return out, created, nil
}

func closeAll(ps []backendPool) {
	for _, p := range ps {
		_ = p.Close()
	}
}

// built is the outcome of Group.build: both kinds of pool for one configuration.
type built struct {
	pools   map[string]*Pool
	https   map[string]*HTTPPool
	skipped []string // backends without a *Pool (transport http)
	created []backendPool
}

// build makes the pools for cfg, reusing from old and oldHTTP those whose settings did not change. On
// error every pool it created is closed and the old ones are untouched.
func (g *Group) build(cfg *mapping.Config, old map[string]*Pool, oldHTTP map[string]*HTTPPool) (*built, error) {
	pools, created, err := buildKind(rsocketKind, cfg, old, g.opts)
	if err != nil {
		return nil, err
	}
	https, createdHTTP, err := buildKind(httpKind, cfg, oldHTTP, g.opts)
	if err != nil {
		closeAll(created)
		return nil, err
	}
	b := &built{pools: pools, https: https, created: append(created, createdHTTP...)}
	for name := range https {
		b.skipped = append(b.skipped, name)
	}
	sort.Strings(b.skipped)
	return b, nil
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

// DefaultReloadReadyWait bounds how long Update waits for the pools it creates to have a ready
// connection before it switches to them.
const DefaultReloadReadyWait = 5 * time.Second

// Update switches to cfg (SIGHUP reload). Pools whose backend settings are unchanged are kept with their
// connections. Changed and new backends get new pools; if the group is started, Update starts them and
// waits until each has a ready connection (at most DefaultReloadReadyWait, then it switches anyway and
// logs the pools that are not ready), so that no request meets a pool that cannot serve it yet. Then it
// switches: the pools replaced, and those of removed backends, stop taking picks at once and close when
// their in-flight requests are done (at most Options.DrainTimeout); requests in flight on them finish
// there. If any new pool cannot be built, nothing changes and the error is returned.
func (g *Group) Update(cfg *mapping.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	old, oldHTTP := *g.pools.Load(), *g.https.Load()
	b, err := g.build(cfg, old, oldHTTP)
	if err != nil {
		return err
	}
	if g.started {
		for _, p := range b.created {
			p.Start()
		}
		g.waitReady(b.created, DefaultReloadReadyWait)
	}
	g.pools.Store(&b.pools)
	g.https.Store(&b.https)
	g.skipped = b.skipped
	retire(g, old, b.pools)
	retire(g, oldHTTP, b.https)
	return nil
}

// waitReady waits until every pool in ps is ready, or at most wait.
func (g *Group) waitReady(ps []backendPool, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for _, p := range ps {
		for !p.Ready() {
			if time.Now().After(deadline) {
				if g.opts.Logger != nil {
					g.opts.Logger.Warn("reload: new backend pool not ready in time, switching to it anyway",
						zap.String("backend", p.Backend().Name), zap.Duration("waited", wait))
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// retire drains (in the background) the pools of old that cur no longer holds: they take no new picks,
// and close once their requests in flight are done or Options.DrainTimeout passed.
func retire[P backendPool](g *Group, old, cur map[string]P) {
	drain := g.opts.DrainTimeout
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	for name, p := range old {
		if q, ok := cur[name]; ok && backendPool(q) == backendPool(p) {
			continue
		}
		stopPicks(p)
		g.retired.Add(1)
		go func() {
			defer g.retired.Done()
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			if err := shutdownPool(ctx, p); err != nil && g.opts.Logger != nil {
				g.opts.Logger.Warn("replaced backend pool closed with requests in flight",
					zap.String("backend", name), zap.Error(err))
			}
		}()
	}
}

// stopPicks makes p refuse new picks (ErrClosed) at once.
func stopPicks(p backendPool) {
	switch p := p.(type) {
	case *Pool:
		p.closed.Store(true)
	case *HTTPPool:
		p.closed.Store(true)
	}
}

// shutdownPool stops new picks on p, waits for its requests in flight (until ctx ends), then closes it.
func shutdownPool(ctx context.Context, p backendPool) error {
	switch p := p.(type) {
	case *Pool:
		return p.Shutdown(ctx)
	case *HTTPPool:
		p.closed.Store(true)
		err := waitIdle(ctx, func() int64 { return int64(p.InFlight()) })
		_ = p.Close()
		return err
	}
	return p.Close()
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
