package mapping

import (
	"strconv"
	"time"
)

// Migration keys: a route moves from a legacy REST service (a backend with transport http) to an RSocket
// service in steps. "shadow" copies traffic to the new backend and compares the answers, "split" sends a
// weighted share of the requests to each backend, and "sticky" keeps one client on one side of a split.
// docs/MIGRATION.md walks through the steps.

// Shadow modes (the values of a route's "shadow.mode" key).
const (
	ShadowRequestResponse = InteractionRequestResponse // copy sent as REQUEST_RESPONSE; the answer can be compared
	ShadowFireAndForget   = InteractionFireAndForget   // copy sent as REQUEST_FNF; nothing to compare
	ShadowHTTP            = InteractionHTTP            // copy proxied to an http backend; the answer can be compared
)

// Defaults of the migration and http-backend keys.
const (
	DefaultShadowConcurrency   = 64
	DefaultShadowPercent       = 100.0
	DefaultHTTPIdleTimeout     = 10 * time.Second
	DefaultHTTPMaxConns        = 512
	DefaultHTTPHealthInterval  = 10 * time.Second
	MaxSplitWeight             = 1_000_000
	MaxShadowConcurrency       = 65536
	defaultShadowTimeoutNoBase = DefaultRouteTimeout
)

// SplitTarget is one entry of a route's "split" list.
type SplitTarget struct {
	// Backend names the entry in "backends". Key "split[].backend", required. An http backend is served as
	// interaction http (proxied, with the route's rewrite); an RSocket backend with the route's interaction.
	Backend string `yaml:"backend"`
	// Weight is the target's share: weight / (sum of the weights). Key "split[].weight", required,
	// 1..1000000.
	Weight int `yaml:"weight"`
}

// Sticky is a route's "sticky" section: the request key that keeps a client on one split target.
// Exactly one of Header and Cookie is set. Requests without the key are split at random.
type Sticky struct {
	// Header names the request header whose value is hashed. Key "sticky.header", e.g. "X-User-Id".
	Header string `yaml:"header,omitempty"`
	// Cookie names the request cookie whose value is hashed. Key "sticky.cookie", e.g. "uid".
	Cookie string `yaml:"cookie,omitempty"`
}

// Shadow is a route's "shadow" section: every request (or Percent of them) is also sent, in the
// background, to another backend whose answer is discarded after an optional comparison with the answer
// the client got. Shadow traffic never delays or fails the served request: when MaxConcurrency copies
// are already running, the copy is dropped (and counted).
type Shadow struct {
	// Backend names the entry in "backends" that receives the copies; it must differ from the route's
	// backend. Key "shadow.backend", required.
	Backend string `yaml:"backend"`
	// Mode is how the copy is sent: request-response | fire-and-forget for an RSocket backend, http for
	// an http backend. Key "shadow.mode", default request-response (RSocket backend) or http (http
	// backend).
	Mode string `yaml:"mode"`
	// Compare compares the shadow's answer with the served one (status class and body bytes) and counts
	// rsgate_shadow_requests_total{route,result="match|mismatch"}. Key "shadow.compare", default true
	// (false for fire-and-forget, which has no answer; true is rejected there).
	Compare bool `yaml:"compare"`
	// MaxConcurrency bounds the copies in flight for this route; more are dropped. Key
	// "shadow.max_concurrency", default 64; 1..65536.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Percent is the share of requests copied, 0..100. Key "shadow.percent", default 100.
	Percent float64 `yaml:"percent"`
	// Timeout bounds one copy. Key "shadow.timeout", default the route's timeout, or 30s when the route
	// has none; > 0.
	Timeout Duration `yaml:"timeout"`
}

// NewShadow returns a Shadow section for backend with the defaults that do not depend on the backend's
// transport or the route (Mode and Timeout are resolved by Validate when left empty/zero).
func NewShadow(backend string) *Shadow {
	return &Shadow{Backend: backend, Compare: true, MaxConcurrency: DefaultShadowConcurrency, Percent: DefaultShadowPercent}
}

// HTTPOptions is a backend's "http" section, for transport http only.
type HTTPOptions struct {
	// IdleTimeout closes upstream keep-alive connections idle this long. Keep it below the upstream
	// server's own keep-alive timeout. Key "http.idle_timeout", default 10s; > 0.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnsPerAddress caps the connections open to each address (HTTP/1.1 carries one request per
	// connection at a time). Key "http.max_conns_per_address", default 512; >= 1.
	MaxConnsPerAddress int `yaml:"max_conns_per_address"`
	// ReadTimeout bounds reading one whole response, streamed bodies included. Key "http.read_timeout",
	// default 0 = only the route timeout applies.
	ReadTimeout Duration `yaml:"read_timeout"`
	// PreserveHost sends the client's Host header upstream; otherwise Host is the address's host (the
	// client's goes in X-Forwarded-Host either way). Key "http.preserve_host", default false.
	PreserveHost bool `yaml:"preserve_host"`
	// HealthInterval is how often every address is checked with a TCP connect; addresses that fail it (or
	// fail a dial while serving) are skipped until a check or their reconnect backoff lets them back.
	// Key "http.health_interval", default 10s; 0 = passive checks only (dial failures).
	HealthInterval Duration `yaml:"health_interval"`
}

// NewHTTPOptions returns an "http" section holding every default.
func NewHTTPOptions() HTTPOptions {
	return HTTPOptions{
		IdleTimeout:        Duration(DefaultHTTPIdleTimeout),
		MaxConnsPerAddress: DefaultHTTPMaxConns,
		HealthInterval:     Duration(DefaultHTTPHealthInterval),
	}
}

// HasSplit reports whether the route splits its requests between backends.
func (r *Route) HasSplit() bool { return len(r.Split) > 0 }

// targetsTransport reports whether a split target or the shadow of r uses a backend for which isHTTP
// holds (with isHTTP true: an http backend; false: an RSocket backend).
func (r *Route) targetsTransport(c *Config, isHTTP bool) bool {
	is := func(name string) bool {
		b := c.Backends[name]
		return b != nil && (b.Transport == TransportHTTP) == isHTTP
	}
	for _, t := range r.Split {
		if is(t.Backend) {
			return true
		}
	}
	return r.Shadow != nil && is(r.Shadow.Backend)
}

// resolveShadow fills the shadow defaults that depend on the shadow backend and the route. set reports
// whether a shadow key was given explicitly (YAML); configs built in Go pass a func that reports
// whether the field is non-zero.
func (r *Route) resolveShadow(c *Config, set func(key string) bool) {
	s := r.Shadow
	if s == nil {
		return
	}
	b := c.Backends[s.Backend]
	if s.Mode == "" && b != nil {
		if b.Transport == TransportHTTP {
			s.Mode = ShadowHTTP
		} else {
			s.Mode = ShadowRequestResponse
		}
	}
	if !set("compare") {
		s.Compare = s.Mode != ShadowFireAndForget
	}
	if !set("max_concurrency") {
		s.MaxConcurrency = DefaultShadowConcurrency
	}
	if !set("percent") {
		s.Percent = DefaultShadowPercent
	}
	if !set("timeout") || s.Timeout == 0 {
		s.Timeout = r.Timeout
		if s.Timeout == 0 {
			s.Timeout = Duration(defaultShadowTimeoutNoBase)
		}
	}
}

// migration validates the split, sticky and shadow keys of route r at field prefix f.
func (v *validator) migration(f string, r *Route) {
	rsocketKind := r.Interaction == InteractionRequestResponse || r.Interaction == InteractionFireAndForget ||
		r.Interaction == InteractionRequestStream
	if len(r.Split) > 0 {
		if !rsocketKind && r.Interaction != InteractionHTTP {
			v.add(f+".split", "not available for interaction %s (only request-response, fire-and-forget, request-stream and http)", r.Interaction)
		}
		seen := map[string]int{}
		for i, t := range r.Split {
			tf := f + ".split[" + strconv.Itoa(i) + "]"
			if t.Weight < 1 || t.Weight > MaxSplitWeight {
				v.add(tf+".weight", "must be between 1 and %d, got %d", MaxSplitWeight, t.Weight)
			}
			b := v.knownBackend(tf+".backend", t.Backend)
			if b == nil {
				continue
			}
			if j, dup := seen[t.Backend]; dup {
				v.add(tf+".backend", "backend %q is already split[%d]", t.Backend, j)
				continue
			}
			seen[t.Backend] = i
			if r.Interaction == InteractionHTTP && b.Transport != TransportHTTP {
				v.add(tf+".backend", "an http route splits between http backends only; %q is %s (make the route an RSocket interaction to split towards it)", t.Backend, b.Transport)
			}
		}
	}
	if r.Sticky != nil {
		switch {
		case len(r.Split) == 0:
			v.add(f+".sticky", "only with split")
		case (r.Sticky.Header == "") == (r.Sticky.Cookie == ""):
			v.add(f+".sticky", "set exactly one of header and cookie")
		case r.Sticky.Header != "" && !isToken(r.Sticky.Header):
			v.add(f+".sticky.header", "invalid header name %q", r.Sticky.Header)
		case r.Sticky.Cookie != "" && !isToken(r.Sticky.Cookie):
			v.add(f+".sticky.cookie", "invalid cookie name %q", r.Sticky.Cookie)
		}
	}
	s := r.Shadow
	if s == nil {
		return
	}
	sf := f + ".shadow"
	if len(r.Split) > 0 {
		v.add(sf, "cannot be combined with split (shadow first, then split)")
	}
	if !(r.Interaction == InteractionRequestResponse || r.Interaction == InteractionFireAndForget || r.Interaction == InteractionHTTP) {
		v.add(sf, "not available for interaction %s (only request-response, fire-and-forget and http)", r.Interaction)
	}
	if s.Backend != "" && s.Backend == r.Backend {
		v.add(sf+".backend", "is the route's own backend %q", s.Backend)
	}
	if b := v.knownBackend(sf+".backend", s.Backend); b != nil {
		if b.Transport == TransportHTTP {
			if s.Mode != ShadowHTTP {
				v.add(sf+".mode", "backend %q has transport http: mode must be http, got %q", s.Backend, s.Mode)
			}
		} else {
			v.oneOf(sf+".mode", s.Mode, ShadowRequestResponse, ShadowFireAndForget)
		}
	}
	if s.Mode == ShadowFireAndForget && s.Compare {
		v.add(sf+".compare", "fire-and-forget has no answer to compare")
	}
	if s.MaxConcurrency < 1 || s.MaxConcurrency > MaxShadowConcurrency {
		v.add(sf+".max_concurrency", "must be between 1 and %d, got %d", MaxShadowConcurrency, s.MaxConcurrency)
	}
	if !(s.Percent >= 0 && s.Percent <= 100) {
		v.add(sf+".percent", "must be between 0 and 100, got %v", s.Percent)
	}
	if s.Timeout <= 0 {
		v.add(sf+".timeout", "must be greater than 0")
	}
}

// knownBackend returns the named backend, or reports at field that it is missing or unknown.
func (v *validator) knownBackend(field, name string) *Backend {
	if name == "" {
		v.add(field, "required")
		return nil
	}
	b := v.c.Backends[name]
	if b == nil {
		msg := "unknown backend " + strconv.Quote(name)
		if s := suggest(name, sortedKeys(v.c.Backends)); s != "" {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		}
		v.add(field, "%s", msg)
	}
	return b
}

// httpOptions validates the "http" section of an http backend.
func (v *validator) httpOptions(f string, h *HTTPOptions) {
	if h.IdleTimeout <= 0 {
		v.add(f+".idle_timeout", "must be greater than 0")
	}
	if h.MaxConnsPerAddress < 1 {
		v.add(f+".max_conns_per_address", "must be at least 1, got %d", h.MaxConnsPerAddress)
	}
}
