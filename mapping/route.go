package mapping

import (
	"sort"
	"strings"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// CodeApplicationError is the RSocket APPLICATION_ERROR code, the one message-prefix rules apply to.
const CodeApplicationError = uint32(frame.CodeApplicationError)

// CompiledRoute is a Route ready for serving: its templates are parsed and its lookup tables built.
// Immutable; shared by all requests.
type CompiledRoute struct {
	*Route
	// BackendConfig is the backend the route's requests go to.
	BackendConfig *Backend
	// Index is the route's position in the config (and in Table.Routes), for per-route arrays such as
	// metrics.
	Index int

	path     *PathTemplate
	tag      Template
	rewrite  Template
	errCodes map[uint32]int
	errPfx   []prefixStatus // longest first
	rsExact  map[string]string
	rsPfx    []prefixBackend // longest first
}

type prefixStatus struct {
	prefix string
	status int
}

type prefixBackend struct {
	prefix  string
	backend string
}

func compileRoute(cfg *Config, r *Route) (*CompiledRoute, error) {
	pt, err := ParsePathTemplate(r.Path)
	if err != nil {
		return nil, err
	}
	cr := &CompiledRoute{Route: r, BackendConfig: cfg.Backends[r.Backend], path: pt}
	if cr.tag, err = ParseTemplate(r.Route, pt.params); err != nil {
		return nil, err
	}
	if cr.rewrite, err = ParseTemplate(r.Rewrite, pt.params); err != nil {
		return nil, err
	}
	for key, status := range r.Errors {
		code, isCode, err := parseErrorKey(key)
		if err != nil {
			return nil, err
		}
		if isCode {
			if cr.errCodes == nil {
				cr.errCodes = map[uint32]int{}
			}
			cr.errCodes[code] = status
		} else {
			cr.errPfx = append(cr.errPfx, prefixStatus{key, status})
		}
	}
	sort.Slice(cr.errPfx, func(i, j int) bool {
		a, b := cr.errPfx[i].prefix, cr.errPfx[j].prefix
		return len(a) > len(b) || len(a) == len(b) && a < b
	})
	if r.RSocket != nil {
		for pat, backend := range r.RSocket.Routes {
			if p, ok := strings.CutSuffix(pat, "*"); ok {
				cr.rsPfx = append(cr.rsPfx, prefixBackend{p, backend})
				continue
			}
			if cr.rsExact == nil {
				cr.rsExact = map[string]string{}
			}
			cr.rsExact[pat] = backend
		}
		sort.Slice(cr.rsPfx, func(i, j int) bool {
			a, b := cr.rsPfx[i].prefix, cr.rsPfx[j].prefix
			return len(a) > len(b) || len(a) == len(b) && a < b
		})
	}
	return cr, nil
}

// Params returns the path template's parameter names in path order. The slice must not be modified.
func (r *CompiledRoute) Params() []string { return r.path.params }

// PathTemplate returns the parsed path template.
func (r *CompiledRoute) PathTemplate() *PathTemplate { return r.path }

// HasTag reports whether the route sends a routing tag.
func (r *CompiledRoute) HasTag() bool { return !r.tag.IsZero() }

// Tag returns the compiled routing tag template.
func (r *CompiledRoute) Tag() Template { return r.tag }

// AppendTag appends the routing tag expanded with ps (from this route's match) to dst. It does not
// allocate when dst has room. The result may exceed the 255 bytes a routing tag can hold when parameter
// values are long; the caller checks (and answers 414 or 400).
func (r *CompiledRoute) AppendTag(dst []byte, ps *Params) []byte { return r.tag.Append(dst, ps) }

// AppendUpstreamPath appends the upstream path for interaction http: the rewrite template expanded with
// ps, or path unchanged when the route has no rewrite.
func (r *CompiledRoute) AppendUpstreamPath(dst, path []byte, ps *Params) []byte {
	if r.rewrite.IsZero() {
		return append(dst, path...)
	}
	return r.rewrite.Append(dst, ps)
}

// ErrorStatus returns the HTTP status the route's "errors" table assigns to an RSocket error, and
// whether a rule matched (otherwise the caller applies the default table). For APPLICATION_ERROR the
// longest matching message prefix wins over a rule for the code. It does not allocate.
func (r *CompiledRoute) ErrorStatus(code uint32, msg []byte) (int, bool) {
	if code == CodeApplicationError {
		for _, p := range r.errPfx {
			if len(msg) >= len(p.prefix) && string(msg[:len(p.prefix)]) == p.prefix {
				return p.status, true
			}
		}
	}
	if s, ok := r.errCodes[code]; ok {
		return s, true
	}
	return 0, false
}

// RSocketBackend returns the backend for a relayed request whose first routing tag is tag (interaction
// rsocket): an exact pattern, else the longest matching prefix pattern, else the route's backend.
func (r *CompiledRoute) RSocketBackend(tag []byte) string {
	if b, ok := r.rsExact[string(tag)]; ok {
		return b
	}
	for _, p := range r.rsPfx {
		if len(tag) >= len(p.prefix) && string(tag[:len(p.prefix)]) == p.prefix {
			return p.backend
		}
	}
	return r.Backend
}
