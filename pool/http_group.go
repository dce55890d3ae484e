package pool

import (
	"reflect"
	"sort"

	"github.com/rsgate/rsgate/mapping"
)

func sameHTTPBackend(cur, next *mapping.Backend) bool {
	a, b := *cur, *next
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// HTTP returns the pool of the named backend with transport http, or nil when there is none.
func (g *Group) HTTP(name string) *HTTPPool {
	m := g.https.Load()
	if m == nil {
		return nil
	}
	return (*m)[name]
}

// BackendReady reports whether the named backend can take requests: an RSocket backend with a ready
// connection, or an http backend with an address not marked down. Unknown names are not ready.
func (g *Group) BackendReady(name string) bool {
	if p := g.Get(name); p != nil {
		return p.Ready()
	}
	if p := g.HTTP(name); p != nil {
		return p.Ready()
	}
	return false
}

// HTTPStats returns the state of every http backend, sorted by name (the /backends view of them).
func (g *Group) HTTPStats() []HTTPStats {
	m := *g.https.Load()
	out := make([]HTTPStats, 0, len(m))
	for _, p := range m {
		out = append(out, p.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Backend < out[j].Backend })
	return out
}
