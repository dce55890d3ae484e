package ingress

import (
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// kindHTTP is interaction http (http_proxy.go). It stays outside the iota list of state.go so that kinds
// added there do not renumber it.
const kindHTTP kind = 0x80

// Weighted split (route key "split"): each request of the route is served by one target, chosen with
// probability weight / total. With "sticky", the choice is a function of a request header or cookie: the
// key's 64-bit hash is scaled onto [0, total) and the target owning that point (targets own consecutive
// ranges in configuration order) serves it. Scaling (not a modulo) keeps clients in place when weights
// move: going from 90/10 to 80/20 moves only the keys in [80, 90) from the first target to the second.
// Requests without the key are split at random (the runtime's per-thread generator: no lock).
//
// Each target is a variant of the route (same path, params, limits, metrics) bound to the target's
// backend: an http backend serves it as interaction http (with the route's rewrite), an RSocket backend
// with the route's interaction (with the route's routing tag). A reload compiles new splitters; requests
// running keep the one they started with.

type splitter struct {
	targets []*route
	ends    []uint64 // cumulative weights: target i owns [ends[i-1], ends[i])
	total   uint64
	header  string // sticky header, or ""
	cookie  string // sticky cookie, or ""
	chosen  []*metrics.Counter
}

// pick chooses the target for the request. It does not allocate.
func (sp *splitter) pick(ctx *fasthttp.RequestCtx) *route {
	var key []byte
	switch {
	case sp.header != "":
		key = ctx.Request.Header.Peek(sp.header)
	case sp.cookie != "":
		key = ctx.Request.Header.Cookie(sp.cookie)
	}
	var x uint64
	if len(key) > 0 {
		x, _ = bits.Mul64(hashKey(key), sp.total)
	} else {
		x = rand.Uint64N(sp.total)
	}
	i := 0
	for i < len(sp.ends)-1 && x >= sp.ends[i] {
		i++
	}
	if c := sp.chosen[i]; c != nil {
		c.Inc()
	}
	return sp.targets[i]
}

// hashKey is FNV-1a followed by the splitmix64 finalizer (FNV alone leaves the high bits of short keys
// poorly mixed, and the scaling uses the high bits).
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// compileMigration derives the split and shadow of rt from its compiled route. It runs once per
// configuration, after newRoute.
func (rt *route) compileMigration(cfg *mapping.Config, set *metrics.Set) error {
	cr := rt.cr
	if cr.Interaction == mapping.InteractionHTTP {
		rt.kind = kindHTTP
	}
	if len(cr.Split) > 0 {
		sp := &splitter{}
		if cr.Sticky != nil {
			sp.header, sp.cookie = cr.Sticky.Header, cr.Sticky.Cookie
		}
		for _, t := range cr.Split {
			v, err := rt.variant(cfg, t.Backend, rt.kind)
			if err != nil {
				return err
			}
			sp.total += uint64(t.Weight)
			sp.targets = append(sp.targets, v)
			sp.ends = append(sp.ends, sp.total)
			var c *metrics.Counter
			if set != nil {
				c = set.GetOrCreateCounter(`rsgate_split_requests_total{route="` + rt.name + `",backend="` + t.Backend + `"}`)
			}
			sp.chosen = append(sp.chosen, c)
		}
		if sp.total == 0 {
			return fmt.Errorf("%w: route %q: split weights sum to 0", errConfig, rt.name)
		}
		rt.split = sp
	}
	if sh := cr.Shadow; sh != nil {
		mode := kindRequestResponse
		switch sh.Mode {
		case mapping.ShadowHTTP:
			mode = kindHTTP
		case mapping.ShadowFireAndForget:
			mode = kindFireAndForget
		}
		v, err := rt.variant(cfg, sh.Backend, mode)
		if err != nil {
			return err
		}
		if v.kind != mode {
			return fmt.Errorf("%w: route %q: shadow mode %s does not fit backend %q", errConfig, rt.name, sh.Mode, sh.Backend)
		}
		v.timeout = sh.Timeout.D()
		rt.shadow = newShadower(rt.name, v, sh, set)
	}
	return nil
}

// variant returns a copy of rt bound to backend: an http backend makes it interaction http; an RSocket
// backend makes it the RSocket interaction rs, with that backend's MIME types.
func (rt *route) variant(cfg *mapping.Config, backend string, rs kind) (*route, error) {
	b := cfg.Backends[backend]
	if b == nil {
		return nil, fmt.Errorf("%w: route %q: unknown backend %q", errConfig, rt.name, backend)
	}
	v := *rt
	v.backend = backend
	v.split, v.shadow = nil, nil
	if b.Transport == mapping.TransportHTTP {
		v.kind = kindHTTP
		return &v, nil
	}
	if rs == kindHTTP {
		return nil, fmt.Errorf("%w: route %q: an http route cannot be served by RSocket backend %q", errConfig, rt.name, backend)
	}
	v.kind = rs
	v.useMIMEs(b)
	return &v, nil
}
