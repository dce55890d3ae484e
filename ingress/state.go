package ingress

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
)

// kind is a route's interaction, resolved once per configuration.
type kind uint8

const (
	kindRequestResponse kind = iota
	kindFireAndForget
	kindRequestStream
	kindRequestChannel // WebSocket messages <-> REQUEST_CHANNEL (ws_channel.go)
	kindRSocket        // RSocket over WebSocket, relayed to the backend (ws_rsocket.go)
	kindNotImplemented // not served by this build (501); interaction http is kindHTTP (split.go)
)

// metadataKind is how a backend expects request metadata (its metadata_mime).
type metadataKind uint8

const (
	mdComposite metadataKind = iota // composite metadata: routing, auth, gateway entries
	mdRouting                       // plain routing metadata: the tag only
	mdNone                          // another MIME type: no metadata is sent
)

// streamFormat is a request-stream route's output format.
type streamFormat uint8

const (
	formatAuto streamFormat = iota
	formatSSE
	formatNDJSON
)

// route is what the ingress derives from one compiled route: everything the hot path needs, resolved.
type route struct {
	cr          *mapping.CompiledRoute
	name        string
	kind        kind
	backend     string
	contentType []byte // backend data_mime: Content-Type of answers and stream items
	mdKind      metadataKind
	timeout     time.Duration
	maxBody     int
	forward     []string // forward_headers as configured
	forwardAuth bool
	format      streamFormat
	window      uint32
	m           *routeMetrics
	// Request-stream stall and SSE resumption (stream_idle.go, stream_resume.go).
	idleTimeout  time.Duration
	resumeWindow time.Duration
	resumeGone   bool // stream.resume_expired: gone (410) instead of a new stream
	idleCount    *metrics.Counter
	ws           *wsRoute      // request-channel and rsocket routes
	split        *splitter     // weighted split between backends (split.go)
	shadow       *shadower     // copies to a shadow backend (shadow.go)
	cors         *corsPolicy   // nil: no CORS (cors.go)
	limit        *keyedLimiter // nil: no rate limit (ratelimit.go)
	wsLimit      *sessionLimit // websocket.rate_limit, per session (ratelimit.go)
	adm          admissionRef  // route and backend limiters (admission.go)
	retry        *retryPolicy  // retries and hedging of request-response (retry.go, hedge.go); nil: none
	auth         *routeAuth    // the route's auth (auth.go); nil: none
	rsp          *rsPolicy     // rsocket routes: allow list, client metadata, max streams (ws_rsocket_trust.go)
}

// errorStatus applies the route's "errors" table to an ERROR frame.
func (rt *route) errorStatus(e *rsocket.Error) (int, bool) {
	return rt.cr.ErrorStatus(uint32(e.Code), unsafeBytes(e.Message))
}

// state is one configuration as served: swapped atomically by Update.
type state struct {
	cfg       *mapping.Config
	table     *mapping.Table
	routes    []*route // by CompiledRoute.Index
	maxBody   int      // largest body any route accepts (fasthttp's limit)
	accessLog bool
	sample    float64
	unmatched *routeMetrics // 404/405
	preflight bool          // some route has a CORS policy: OPTIONS may be a preflight (cors.go)
	adm       admissionLimits
	auth      *authSet // auth providers (auth.go); nil: none configured
}

// routeMetrics are the per-route series on the Options.Metrics set.
type routeMetrics struct {
	byClass  [6]*metrics.Counter // rsgate_http_requests_total{route,status="1xx".."5xx"}; [0] other
	duration *metrics.PrometheusHistogram
	inflight *inflightCount   // rsgate_http_inflight_requests{route}
	items    *metrics.Counter // rsgate_stream_items_total
	set      *metrics.Set
}

func newRouteMetrics(set *metrics.Set, name string) *routeMetrics {
	m := &routeMetrics{set: set}
	if set == nil {
		return m
	}
	label := `route="` + name + `"`
	classes := [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}
	for i, c := range classes {
		m.byClass[i] = set.GetOrCreateCounter(`rsgate_http_requests_total{` + label + `,status="` + c + `"}`)
	}
	m.duration = set.GetOrCreatePrometheusHistogram(`rsgate_http_request_duration_seconds{` + label + `}`)
	m.inflight = inflightCountOf(set, `rsgate_http_inflight_requests{`+label+`}`)
	m.items = set.GetOrCreateCounter(`rsgate_stream_items_total{` + label + `}`)
	return m
}

// begin counts a request or stream in flight; rq is the pooled request (its call context's shard picks
// the in-flight counter, see inflightCount).
func (m *routeMetrics) begin(rq *request) {
	if m.set != nil {
		m.inflight[rq.call.shard].n.Add(1)
	}
}

// end counts a finished request or stream; rq as given to begin.
func (m *routeMetrics) end(rq *request, status int, d time.Duration) {
	if m.set == nil {
		return
	}
	m.inflight[rq.call.shard].n.Add(-1)
	m.count(status, d)
}

// inflightCount is a route's in-flight gauge, split into one counter per calls-registry shard, each on a
// cache line of its own; the gauge reports their sum. Every request adds to it and takes away again, from
// whatever core serves it: one shared float gauge (a compare-and-swap loop) made that a cache line that
// every core wrote twice per request. A request uses the shard of its pooled call context; requests come
// from a per-P pool, so a core mostly meets the same few shards. BenchmarkRouteMetrics.
type inflightCount [callShards]struct {
	n atomic.Int64
	_ [56]byte
}

func (c *inflightCount) sum() float64 {
	var n int64
	for i := range c {
		n += c[i].n.Load()
	}
	return float64(n)
}

// inflightCounts keeps one inflightCount per set and series name, so that a route rebuilt by a reload
// counts on the same shards that the series' gauge (created once, with its callback) reports.
var inflightCounts sync.Map // inflightKey -> *inflightCount

type inflightKey struct {
	set  *metrics.Set
	name string
}

func inflightCountOf(set *metrics.Set, name string) *inflightCount {
	k := inflightKey{set, name}
	if c, ok := inflightCounts.Load(k); ok {
		return c.(*inflightCount)
	}
	c, loaded := inflightCounts.LoadOrStore(k, new(inflightCount))
	ic := c.(*inflightCount)
	if !loaded {
		set.GetOrCreateGauge(name, ic.sum)
	}
	return ic
}

// count counts a request that was never in flight (404/405, errors before dispatch).
func (m *routeMetrics) count(status int, d time.Duration) {
	if m.set == nil {
		return
	}
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.byClass[c].Inc()
	m.duration.Update(d.Seconds())
}

func (m *routeMetrics) addItems(n int) {
	if m.set != nil && n > 0 {
		m.items.Add(n)
	}
}

// errConfig reports a configuration the ingress cannot serve.
var errConfig = errors.New("ingress: configuration")

func compileState(cfg *mapping.Config, table *mapping.Table, set *metrics.Set) (*state, error) {
	if cfg == nil || table == nil {
		return nil, fmt.Errorf("%w: nil config or table", errConfig)
	}
	st := &state{
		cfg:       cfg,
		table:     table,
		maxBody:   cfg.Limits.MaxBody,
		accessLog: cfg.Log.AccessLog.Enabled,
		sample:    cfg.Log.AccessLog.Sample,
		unmatched: newRouteMetrics(set, "_unmatched"),
	}
	crs := table.Routes()
	st.routes = make([]*route, len(crs))
	for _, cr := range crs {
		if cr.Index < 0 || cr.Index >= len(crs) || st.routes[cr.Index] != nil {
			return nil, fmt.Errorf("%w: route %q has a bad index %d", errConfig, cr.Name, cr.Index)
		}
		rt, err := newRoute(cfg, cr, set)
		if err != nil {
			return nil, err
		}
		st.routes[cr.Index] = rt
		if rt.maxBody > st.maxBody {
			st.maxBody = rt.maxBody
		}
	}
	st.compilePolicies(cfg, set)       // policy.go
	st.compileAdmission(cfg, set, nil) // admission.go
	return st, nil
}

// useMIMEs sets what rt takes from its backend's MIME types: the answers' Content-Type (data_mime) and
// the request metadata layout (metadata_mime).
func (rt *route) useMIMEs(b *mapping.Backend) {
	rt.contentType = []byte(b.DataMIME)
	switch strings.ToLower(b.MetadataMIME) {
	case "", extension.MimeComposite:
		rt.mdKind = mdComposite
	case extension.MimeRouting:
		rt.mdKind = mdRouting
	default:
		rt.mdKind = mdNone
	}
}

func newRoute(cfg *mapping.Config, cr *mapping.CompiledRoute, set *metrics.Set) (*route, error) {
	rt := &route{
		cr:          cr,
		name:        cr.Name,
		backend:     cr.Backend,
		timeout:     cr.Timeout.D(),
		maxBody:     cr.MaxBody,
		forward:     stripGatewayHeaders(cr.ForwardHeaders), // x-client-cert-subject is gateway-set (tls_edge.go)
		forwardAuth: cr.ForwardAuth,
		m:           newRouteMetrics(set, cr.Name),
	}
	if rt.maxBody <= 0 {
		rt.maxBody = cfg.Limits.MaxBody
	}
	switch cr.Interaction {
	case mapping.InteractionRequestResponse:
		rt.kind = kindRequestResponse
	case mapping.InteractionFireAndForget:
		rt.kind = kindFireAndForget
	case mapping.InteractionRequestStream:
		rt.kind = kindRequestStream
	case mapping.InteractionRequestChannel:
		rt.kind = kindRequestChannel
	case mapping.InteractionRSocket:
		rt.kind = kindRSocket
	default:
		rt.kind = kindNotImplemented
	}
	b := cr.BackendConfig
	if b == nil {
		b = cfg.Backends[cr.Backend]
	}
	if b == nil {
		return nil, fmt.Errorf("%w: route %q: unknown backend %q", errConfig, cr.Name, cr.Backend)
	}
	rt.useMIMEs(b)
	rt.retry = newRetryPolicy(cr, set)
	if cr.IsWebSocket() {
		rt.ws = newWSRoute(cr, b.DataMIME, set)
	}
	if rt.kind == kindRSocket {
		rt.rsp = newRSPolicy(cr)
	}
	switch cr.Stream.Format {
	case mapping.StreamSSE:
		rt.format = formatSSE
	case mapping.StreamNDJSON:
		rt.format = formatNDJSON
	default:
		rt.format = formatAuto
	}
	w := cr.Stream.Window
	if w <= 0 {
		w = mapping.DefaultStreamWindow
	}
	rt.window = uint32(min(w, mapping.MaxWindow))
	if rt.kind == kindRequestStream {
		rt.compileStream(cr.Stream.IdleTimeout.D(), cr.Stream.ResumeWindow.D(), cr.Stream.ResumeExpired, set)
	}
	if err := rt.compileMigration(cfg, set); err != nil { // interaction http, split, shadow (split.go)
		return nil, err
	}
	return rt, nil
}
