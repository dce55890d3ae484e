package mapping

import (
	"os"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Interaction names (the values of a route's "interaction" key).
const (
	InteractionRequestResponse = "request-response" // HTTP request -> REQUEST_RESPONSE -> HTTP response
	InteractionFireAndForget   = "fire-and-forget"  // HTTP request -> REQUEST_FNF -> 202 Accepted
	InteractionRequestStream   = "request-stream"   // HTTP request -> REQUEST_STREAM -> SSE or NDJSON
	InteractionRequestChannel  = "request-channel"  // WebSocket messages <-> REQUEST_CHANNEL payloads
	InteractionRSocket         = "rsocket"          // RSocket over WebSocket, frames relayed to the backend
	InteractionHTTP            = "http"             // plain HTTP reverse proxy to an http backend
)

// Backend transports (the values of a backend's "transport" key).
const (
	TransportTCP       = "tcp"       // RSocket over TCP; addresses are "host:port"
	TransportWebSocket = "websocket" // RSocket over WebSocket; addresses are "ws://" or "wss://" URLs
	TransportHTTP      = "http"      // legacy REST upstream; addresses are "http://" or "https://" URLs
)

// Stream formats (the values of a route's "stream.format" key).
const (
	StreamAuto   = "auto"   // SSE when the request accepts text/event-stream, NDJSON otherwise
	StreamSSE    = "sse"    // always text/event-stream
	StreamNDJSON = "ndjson" // always application/x-ndjson
)

// MethodAny is the route method that matches every HTTP method.
const MethodAny = "*"

// MaxParams is the largest number of parameters a path template may have.
const MaxParams = 16

// Defaults. Exported so that the README, the -demo wiring and tests share one source.
const (
	DefaultListen          = ":8080"
	DefaultAdmin           = "127.0.0.1:9901"
	DefaultShutdownGrace   = 15 * time.Second
	MaxWorkers             = 1024
	DefaultMaxBody         = 4 << 20
	DefaultReadTimeout     = 30 * time.Second
	DefaultIdleTimeout     = 120 * time.Second
	DefaultMaxHeaderSize   = 8 << 10
	DefaultConnections     = 2 // the least "auto" gives; see AutoConnections
	DefaultDataMIME        = "application/json"
	DefaultMetadataMIME    = "message/x.rsocket.composite-metadata.v0"
	DefaultKeepalive       = 20 * time.Second
	DefaultMaxLifetime     = 90 * time.Second
	DefaultMaxInflight     = 10000
	DefaultDialTimeout     = 5 * time.Second
	DefaultResolveInterval = 30 * time.Second
	DefaultMinBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff      = 10 * time.Second
	DefaultRouteTimeout    = 30 * time.Second
	DefaultStreamWindow    = 64
	DefaultWSMaxMessage    = 1 << 20
	DefaultWSIdleTimeout   = 60 * time.Second
	DefaultWSPingInterval  = 25 * time.Second
	DefaultWSMaxSessions   = 10000
	MinMTU                 = frame.MinMTU      // the one definition is in rsocket/frame
	MaxWindow              = frame.MaxRequestN // REQUEST_N's upper bound
)

// Config is the whole configuration file. A Config returned by Parse or Load is validated and every field
// holds its effective value (defaults applied).
type Config struct {
	// File is the path the config was read from (for messages and SIGHUP reload). Not a YAML key.
	File string `yaml:"-"`

	// Listen is the HTTP and WebSocket ingress address, "host:port" (host may be empty). Key "listen",
	// default ":8080".
	Listen string `yaml:"listen"`

	// Admin is the admin listener address (/metrics, /healthz, /readyz, /routes, /backends). Key "admin",
	// default "127.0.0.1:9901"; "" or "off" disables it (Admin is then "").
	Admin string `yaml:"admin"`

	// AdminTokenFile is a file holding the admin bearer token: every admin endpoint but /healthz and
	// /readyz then needs "Authorization: Bearer <token>". Read at start and on every reload; surrounding
	// white space is ignored. Key "admin_token_file", default "" = no token (the admin listener still
	// refuses foreign Host headers and cross-site POSTs).
	AdminTokenFile string `yaml:"admin_token_file"`

	// ShutdownGrace is how long a SIGTERM drain waits for in-flight requests and streams before closing
	// them. Key "shutdown_grace", default 15s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`

	// Workers is the number of gateway processes serving the listen address (Linux only): 1 runs everything
	// in this process; N > 1 makes this process a supervisor of N workers, each a whole gateway on its own
	// share of the cores, the kernel spreading client connections over them (SO_REUSEPORT). Workers share
	// nothing, like replicas on one host: limits, rate-limit buckets and resumable sessions are per worker.
	// Key "workers", 1..1024 or "auto"; default 1. "auto" = AutoWorkers() (one per core GOMAXPROCS allows).
	// See cmd/gateway/workers.go.
	Workers int `yaml:"workers" unit:"workers"`

	// Log configures logging. Key "log".
	Log LogConfig `yaml:"log"`

	// Limits are the ingress limits. Key "limits".
	Limits Limits `yaml:"limits"`

	// TLS enables HTTPS/WSS on the ingress listener when present. Key "tls", default absent (plain HTTP).
	TLS *IngressTLS `yaml:"tls,omitempty"`

	// Backends maps a backend name (the YAML key) to its settings. Key "backends", at least one.
	Backends map[string]*Backend `yaml:"backends"`

	// Routes lists the routes; order does not matter for matching (specificity does). Key "routes",
	// at least one.
	Routes []*Route `yaml:"routes"`

	// CORS is the CORS policy of every HTTP route without its own (see CORSConfig). Key "cors", default
	// absent = no CORS headers, preflights not answered.
	CORS *CORSConfig `yaml:"cors,omitempty"`
	// RateLimit is the rate limit shared by every route without its own (one bucket per key across
	// those routes; see RateLimitConfig). Key "rate_limit", default absent = off.
	RateLimit *RateLimitConfig `yaml:"rate_limit,omitempty"`
	// Auth maps a provider name to an authentication provider that routes refer to (see AuthProvider,
	// auth.go). Key "auth", default none.
	Auth map[string]*AuthProvider `yaml:"auth,omitempty"`

	// lines maps a field path ("routes[2].timeout") to the line of its key; nil for configs built in Go.
	lines map[string]int
	// bad holds the fields Parse could not decode; validation does not pile on more errors about them.
	bad map[string]bool
}

// LogConfig is the "log" section.
type LogConfig struct {
	// Level is the minimum level: debug | info | warn | error. Key "log.level", default "info".
	Level string `yaml:"level"`
	// Format is json | console. Key "log.format", default "json".
	Format string `yaml:"format"`
	// AccessLog configures per-request access logging. Key "log.access_log".
	AccessLog AccessLogConfig `yaml:"access_log"`
}

// AccessLogConfig is the "log.access_log" section.
type AccessLogConfig struct {
	// Enabled turns access logging on. Key "log.access_log.enabled", default false.
	Enabled bool `yaml:"enabled"`
	// Sample is the fraction of requests logged, 0..1 (errors are meant to be logged always). Key
	// "log.access_log.sample", default 1.
	Sample float64 `yaml:"sample"`
}

// Limits is the "limits" section: ingress-wide limits.
type Limits struct {
	// MaxBody is the largest request body (and WebSocket upgrade request) accepted, in bytes; larger
	// bodies get 413. Routes may override it. Key "limits.max_body", bytes or "4MiB"; default 4 MiB; > 0.
	MaxBody int `yaml:"max_body" unit:"bytes"`
	// ReadTimeout bounds reading one whole request (headers and body). Key "limits.read_timeout",
	// default 30s; 0 = none.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response. Key "limits.write_timeout", default 0 = none (streams and
	// WebSockets run as long as they run; route timeouts bound the backend side).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Key "limits.idle_timeout", default 120s;
	// 0 = none.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnections caps concurrent client connections (WebSocket sessions included); a connection
	// beyond it is closed at accept. Key "limits.max_connections", default 0 = derived by the gateway
	// from the open-files limit (see DefaultMaxConnections); >= 0.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps the concurrent client connections from one IP address; a connection
	// beyond it is closed at accept. Key "limits.max_connections_per_ip", default 0 = no limit (clients
	// behind one NAT or proxy share an address); >= 0.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxHeaderSize is the largest request line plus headers, in bytes. Key "limits.max_header_size",
	// bytes or "8KiB"; default 8 KiB; >= 1 KiB.
	MaxHeaderSize int `yaml:"max_header_size" unit:"bytes"`
	// ReduceMemory releases per-connection buffers while connections are idle (fasthttp's
	// ReduceMemoryUsage: keep-alive connections between requests give their read and write buffers back
	// to shared pools): much less memory with many idle clients, a little more CPU per request. Key
	// "limits.reduce_memory", default true.
	ReduceMemory bool `yaml:"reduce_memory"`
	// Admission holds the defaults of every route's admission section and the per-backend adaptive limits
	// (mapping/admission.go). Key "limits.admission".
	Admission Admission `yaml:"admission"`
	// MaxParkedStreams caps the SSE streams parked for resumption (stream.resume_window) gateway-wide;
	// beyond it a client that goes away ends its stream as without resumption. Key
	// "limits.max_parked_streams", default 1024; 0 = no stream is parked.
	MaxParkedStreams int `yaml:"max_parked_streams"`
	// StreamIdleTimeout is the stream.idle_timeout of request-stream routes that do not set their own. Key
	// "limits.stream_idle_timeout", default 60s; 0 = off.
	StreamIdleTimeout Duration `yaml:"stream_idle_timeout"`
}

// IngressTLS is the "tls" section: certificate for the ingress listener.
type IngressTLS struct {
	// Cert is the PEM certificate chain file. Key "tls.cert", required. Reloaded on SIGHUP and POST
	// /reload, and when the file changes (see ReloadInterval), without dropping connections.
	Cert string `yaml:"cert"`
	// Key is the PEM private key file. Key "tls.key", required.
	Key string `yaml:"key"`
	// ClientCA is a PEM file of the CAs that sign client certificates (mutual TLS). Key "tls.client_ca",
	// default "" = client certificates are not asked for. Reloaded like the certificate.
	ClientCA string `yaml:"client_ca"`
	// ClientAuth is request (a client certificate is asked for and verified when given) or require (a
	// verified client certificate is needed to connect). Key "tls.client_auth", default require when
	// client_ca is set; needs client_ca.
	ClientAuth string `yaml:"client_auth"`
	// ReloadInterval is how often, at most, the files' modification times are checked (on new TLS
	// handshakes) to pick up renewed certificates. Key "tls.reload_interval", default 10s; 0 = only on
	// SIGHUP and POST /reload.
	ReloadInterval *Duration `yaml:"reload_interval,omitempty"`
}

// TLS client authentication modes (tls.client_auth).
const (
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// DefaultTLSReloadInterval is the default of tls.reload_interval.
const DefaultTLSReloadInterval = 10 * time.Second

// EffectiveClientAuth is the client_auth mode in force: "" without client_ca.
func (t *IngressTLS) EffectiveClientAuth() string {
	if t.ClientCA == "" {
		return ""
	}
	if t.ClientAuth == "" {
		return ClientAuthRequire
	}
	return t.ClientAuth
}

// EffectiveReloadInterval is tls.reload_interval with its default.
func (t *IngressTLS) EffectiveReloadInterval() time.Duration {
	if t.ReloadInterval == nil {
		return DefaultTLSReloadInterval
	}
	return t.ReloadInterval.D()
}

// Backend is one entry of "backends": a set of instances reached over one transport.
type Backend struct {
	// Name is the key under "backends". Not a YAML key.
	Name string `yaml:"-"`
	// Line is the YAML line of the backend's name (0 for configs built in Go). Not a YAML key.
	Line int `yaml:"-"`

	// Transport is tcp | websocket | http. Key "transport", default "tcp".
	Transport string `yaml:"transport"`
	// Addresses are the instances: "host:port" for tcp, "ws://" or "wss://" URLs for websocket,
	// "http://" or "https://" URLs for http. Key "addresses" (a list, or one string), required.
	Addresses []string `yaml:"addresses"`
	// Connections is the number of persistent connections per address. Key "connections", 1..1024 or
	// "auto"; default "auto" = AutoConnections() (one per GOMAXPROCS, at least 2).
	Connections int `yaml:"connections" unit:"connections"`
	// DataMIME is the SETUP data MIME type. Key "data_mime", default "application/json".
	DataMIME string `yaml:"data_mime"`
	// MetadataMIME is the SETUP metadata MIME type. Key "metadata_mime", default
	// "message/x.rsocket.composite-metadata.v0".
	MetadataMIME string `yaml:"metadata_mime"`
	// Keepalive is the KEEPALIVE interval sent in SETUP. Key "keepalive", default 20s; 1ms..2^31-1 ms.
	Keepalive Duration `yaml:"keepalive"`
	// MaxLifetime closes a connection that has received nothing for this long. Key "max_lifetime",
	// default 90s; must exceed keepalive; at most 2^31-1 ms.
	MaxLifetime Duration `yaml:"max_lifetime"`
	// MaxInflight caps concurrent requests to this backend (all its connections together); beyond it requests get 503. Key "max_inflight",
	// default 10000; >= 1.
	MaxInflight int `yaml:"max_inflight"`
	// DialTimeout bounds dialling plus SETUP. Key "dial_timeout", default 5s; > 0.
	DialTimeout Duration `yaml:"dial_timeout"`
	// MTU fragments outgoing frames larger than this many bytes. Key "mtu", default 0 = never fragment;
	// otherwise 64..16777215.
	MTU int `yaml:"mtu" unit:"bytes"`
	// Lease sets the L flag in SETUP: requests are sent only within leases granted by the backend. Key
	// "lease", default false.
	Lease bool `yaml:"lease"`
	// Setup is an optional SETUP payload. Key "setup", default absent (empty payload).
	Setup *SetupPayload `yaml:"setup,omitempty"`
	// TLS enables TLS to the backend when present (for websocket, a wss:// address also enables it).
	// Key "tls", default absent.
	TLS *TLS `yaml:"tls,omitempty"`
	// ResolveInterval re-resolves host names in addresses this often and adds or drops connections
	// to follow the DNS answer (Kubernetes headless services). Key "resolve_interval", default 30s;
	// 0 = resolve once at dial time.
	ResolveInterval Duration `yaml:"resolve_interval"`
	// Reconnect is the backoff between failed dials. Key "reconnect". For transport http: how long an
	// address that failed a dial is skipped (growing from min_backoff to max_backoff).
	Reconnect Reconnect `yaml:"reconnect"`
	// Resume makes the backend connections resumable (RSocket RESUME): a cut connection is re-dialled and
	// the session continues. Key "resume" (see BackendResume); off by default.
	Resume BackendResume `yaml:"resume"`
	// HTTP configures transport http (legacy REST upstreams); only for that transport (see HTTPOptions).
	// Key "http". For transport http, of the other keys only addresses, max_inflight, dial_timeout, tls,
	// resolve_interval (the longest an upstream connection is kept, so that new connections follow DNS)
	// and reconnect apply.
	HTTP HTTPOptions `yaml:"http,omitempty"`
	// Balancer is weighted | p2c (see resilience.go). Key "balancer", default "weighted".
	Balancer string `yaml:"balancer,omitempty"`
	// Outlier ejects failing addresses (see Outlier). Key "outlier".
	Outlier Outlier `yaml:"outlier,omitempty"`
}

// SetupPayload is a backend's "setup" section: the payload sent in SETUP.
type SetupPayload struct {
	// Data is the SETUP data. Key "setup.data", default "".
	Data string `yaml:"data"`
	// Metadata is the SETUP metadata; when set, the M flag is set. Key "setup.metadata", default "".
	Metadata string `yaml:"metadata"`
}

// TLS is a backend's "tls" section.
type TLS struct {
	// CA is a PEM file of roots to verify the backend with. Key "tls.ca", default "" = system roots.
	CA string `yaml:"ca"`
	// Cert is a PEM client certificate (mutual TLS). Key "tls.cert", default ""; needs tls.key.
	Cert string `yaml:"cert"`
	// Key is the client certificate's PEM private key. Key "tls.key", default ""; needs tls.cert.
	Key string `yaml:"key"`
	// ServerName overrides the name verified in the backend's certificate. Key "tls.server_name",
	// default "" = the address's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification (testing only). Key
	// "tls.insecure_skip_verify", default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Reconnect is a backend's "reconnect" section: jittered exponential backoff between dials.
type Reconnect struct {
	// MinBackoff is the first delay. Key "reconnect.min_backoff", default 100ms; > 0.
	MinBackoff Duration `yaml:"min_backoff"`
	// MaxBackoff caps the delay. Key "reconnect.max_backoff", default 10s; >= min_backoff.
	MaxBackoff Duration `yaml:"max_backoff"`
}

// Route is one entry of "routes": an HTTP method and path mapped onto a backend interaction.
type Route struct {
	// Line is the YAML line where the route starts (0 for configs built in Go). Not a YAML key.
	Line int `yaml:"-"`

	// Name identifies the route in logs, metrics and /routes. Key "name", required, unique; letters,
	// digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Method is the HTTP method, upper-cased on load, or "*" for any. Key "method". Default by
	// interaction: request-stream GET, fire-and-forget POST, http "*"; required for request-response;
	// request-channel and rsocket are WebSocket upgrades and always GET (only "GET" may be written).
	Method string `yaml:"method"`
	// Path is the path template: literal segments, "{name}" segments and an optional final "{name...}".
	// Key "path", required, starts with "/".
	Path string `yaml:"path"`
	// Backend names the entry in "backends". Key "backend", required. Interaction http needs an http
	// backend and every other interaction an RSocket (tcp or websocket) backend.
	Backend string `yaml:"backend"`
	// Interaction is request-response | fire-and-forget | request-stream | request-channel | rsocket |
	// http. Key "interaction", required.
	Interaction string `yaml:"interaction"`
	// Route is the routing tag template, e.g. "users.{id}"; every {param} must be a path parameter;
	// braces cannot be escaped. Key "route", default "" = no routing metadata. Not allowed for rsocket,
	// nor for http unless the route has an RSocket shadow backend.
	Route string `yaml:"route"`
	// Rewrite is the upstream path template for interaction http, e.g. "/v1/users/{id}". Key "rewrite",
	// default "" = forward the request path unchanged. Only for http, and for routes with an http split or
	// shadow backend.
	Rewrite string `yaml:"rewrite,omitempty"`
	// Timeout bounds the whole exchange; when it fires the client gets 504 (or a stream error) and the
	// backend gets CANCEL. Key "timeout"; default 30s for request-response, fire-and-forget and http,
	// 0 = none for request-stream, request-channel and rsocket.
	Timeout Duration `yaml:"timeout"`
	// Stream configures request-stream and request-channel delivery. Key "stream"; only for those.
	Stream StreamConfig `yaml:"stream,omitempty"`
	// MaxBody overrides limits.max_body for this route, in bytes. Key "max_body", bytes or "1MiB";
	// default limits.max_body; > 0.
	MaxBody int `yaml:"max_body" unit:"bytes"`
	// ForwardHeaders are HTTP request header names copied into the gateway metadata entry. Key
	// "forward_headers", default none; valid header names, no duplicates (case-insensitive).
	ForwardHeaders []string `yaml:"forward_headers,omitempty"`
	// ForwardAuth turns "Authorization: Bearer X" into a bearer authentication metadata entry. Key
	// "forward_auth", default true.
	ForwardAuth bool `yaml:"forward_auth"`
	// Errors maps APPLICATION_ERROR messages or error codes to HTTP statuses. A key that is an integer
	// (decimal or 0x hex, e.g. 0x202) is an RSocket error code; any other key is a prefix of the
	// APPLICATION_ERROR message (the longest matching prefix wins). Values are statuses 200..599.
	// Key "errors", default none (see the default error table in the README).
	Errors map[string]int `yaml:"errors,omitempty"`
	// WebSocket configures the client WebSocket of request-channel and rsocket routes. Key
	// "websocket"; only for those.
	WebSocket WebSocketConfig `yaml:"websocket,omitempty"`
	// RSocket configures interaction rsocket. Key "rsocket"; only for rsocket.
	RSocket *RSocketConfig `yaml:"rsocket,omitempty"`
	// Split divides the route's requests between backends by weight (see SplitTarget); the route's
	// backend is then used only as the default when split is removed. Key "split", default none; for
	// request-response, fire-and-forget, request-stream and http.
	Split []SplitTarget `yaml:"split,omitempty"`
	// Sticky makes the split choice a function of a request header or cookie (see Sticky). Key
	// "sticky", default absent (random choice); only with split.
	Sticky *Sticky `yaml:"sticky,omitempty"`
	// Required makes /readyz wait for the backends this route is served by (its backend, its split
	// targets and its rsocket.routes backends; not its shadow). Key "required", default true; a route
	// of false does not take the gateway out of rotation when its backends are down.
	Required *bool `yaml:"required,omitempty"`
	// Shadow copies requests to another backend in the background and compares the answers (see
	// Shadow). Key "shadow", default absent; for request-response, fire-and-forget and http; not with
	// split.
	Shadow *Shadow `yaml:"shadow,omitempty"`
	// CORS replaces the top-level cors policy for this route; cors: {origins: []} turns CORS off here.
	// Key "cors", default absent = the top-level policy. Not for request-channel and rsocket (use
	// websocket.origins).
	CORS *CORSConfig `yaml:"cors,omitempty"`
	// RateLimit replaces the top-level rate_limit for this route, with buckets of its own; rate: off
	// exempts the route. For WebSocket routes it limits upgrades. Key "rate_limit", default absent = the
	// top-level limit.
	RateLimit *RateLimitConfig `yaml:"rate_limit,omitempty"`
	// Admission is the route's concurrency limit and wait queue (mapping/admission.go). Key "admission";
	// each key defaults to the one under limits.admission.
	Admission Admission `yaml:"admission"`
	// Priority is critical | normal | background: who is shed first when the gateway is short of CPU or
	// backend capacity (background, then normal). Key "priority", default "normal".
	Priority string `yaml:"priority"`
	// Idempotent says a request may safely be processed twice: it allows hedging and the retry
	// conditions application_error, timeout and connection_lost. Key "idempotent", default false.
	Idempotent bool `yaml:"idempotent,omitempty"`
	// Retry retries failed request-response calls within a budget (see Retry). Key "retry".
	Retry Retry `yaml:"retry,omitempty"`
	// Hedge sends a second copy of slow idempotent request-response calls (see Hedge). Key "hedge".
	Hedge Hedge `yaml:"hedge,omitempty"`
	// Auth requires authentication by a provider of "auth" (see RouteAuth, auth.go): "auth: NAME" or
	// "auth: {provider, scopes, query_param}". Key "auth", default absent (no authentication).
	Auth *RouteAuth `yaml:"auth,omitempty"`
}

// StreamConfig is a route's "stream" section.
type StreamConfig struct {
	// Format is auto | sse | ndjson. Key "stream.format", default "auto" (SSE when the request's Accept
	// includes text/event-stream, NDJSON otherwise).
	Format string `yaml:"format"`
	// Window is the REQUEST_N credit kept outstanding towards the backend, in items. Key "stream.window",
	// default 64; 1..2^31-1.
	Window int `yaml:"window"`
	// IdleTimeout ends a request-stream whose backend has credit outstanding and has sent no item for
	// this long: CANCEL upstream, an in-stream STREAM_IDLE error to the client. A slow client (no credit
	// outstanding) never trips it. Key "stream.idle_timeout", default limits.stream_idle_timeout (60s);
	// 0 = off. See stream_keys.go.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ResumeWindow is how long an SSE request-stream whose client went away stays parked (upstream kept,
	// no new credit) for an EventSource reconnecting with Last-Event-ID. Key "stream.resume_window",
	// default 30s; 0 = off.
	ResumeWindow Duration `yaml:"resume_window"`
	// ResumeExpired is what a Last-Event-ID that names no parked stream gets: "new" (a new stream) or
	// "gone" (410 STREAM_EXPIRED). Key "stream.resume_expired", default "new".
	ResumeExpired string `yaml:"resume_expired"`
}

// WebSocketConfig is a route's "websocket" section.
type WebSocketConfig struct {
	// MaxMessage is the largest inbound WebSocket message, in bytes. Key "websocket.max_message", bytes
	// or "1MiB"; default 1 MiB; > 0.
	MaxMessage int `yaml:"max_message" unit:"bytes"`
	// IdleTimeout closes the socket after this long without a message either way. Key
	// "websocket.idle_timeout", default 60s; 0 = none.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// PingInterval is how often the gateway pings the client. Key "websocket.ping_interval", default
	// 25s; 0 = never.
	PingInterval Duration `yaml:"ping_interval"`
	// MaxSessions caps the concurrent WebSocket sessions of the route; an upgrade beyond it gets 503
	// TOO_MANY_SESSIONS. Key "websocket.max_sessions", default 10000; 0 = no limit; >= 0.
	MaxSessions int `yaml:"max_sessions"`
	// Origins is the allow-list of Origin header values ("https://app.example.com"), or ["*"] for any.
	// Key "websocket.origins", default none = same origin only (Origin's host equals Host).
	Origins []string `yaml:"origins,omitempty"`
	// RateLimit limits each session: inbound messages of a request-channel (on excess the socket is
	// closed with 1008), new requests of an rsocket session (on excess that request gets
	// ERROR[REJECTED]). Key "websocket.rate_limit" ({rate, burst}), default absent = off.
	RateLimit *RateLimitConfig `yaml:"rate_limit,omitempty"`
}

// RSocketConfig is a route's "rsocket" section (interaction rsocket).
type RSocketConfig struct {
	// Routes sends requests whose first routing tag matches a pattern to another backend. A pattern is
	// an exact tag, or a prefix ending in "*" ("users.*"); the exact match, then the longest prefix
	// wins; unmatched requests go to the route's backend. Key "rsocket.routes", default none.
	Routes map[string]string `yaml:"routes,omitempty"`
	// Allow lists the routing tags a client may use: exact tags, prefixes ending in ".*" ("users.*"), or
	// "*" for every tag. A request whose routing tags are not all allowed (or that has none, unless "*")
	// gets ERROR[REJECTED] naming the tag. Key "rsocket.allow", required for interaction rsocket (write
	// ["*"] to open the route on purpose).
	Allow []string `yaml:"allow"`
	// MaxStreams bounds the concurrent streams of one client connection; requests beyond it get
	// ERROR[REJECTED]. Key "rsocket.max_streams", default 256; 1..1048576.
	MaxStreams int `yaml:"max_streams"`
	// ClientMetadata is what the gateway does with client composite metadata entries of the types it
	// writes itself (message/x.rsgate.*, and message/x.rsocket.authentication.v0 unless forward_auth):
	// strip (remove them, relay the rest) or reject (ERROR[REJECTED] on the stream, REJECTED_SETUP for a
	// SETUP). Key "rsocket.client_metadata", default strip.
	ClientMetadata string `yaml:"client_metadata"`
	// Resume lets clients resume their sessions after a network flap (see RSocketResume). Key
	// "rsocket.resume", default absent = off.
	Resume *RSocketResume `yaml:"resume,omitempty"`
}

// NewConfig returns a Config holding every default and no backends or routes.
func NewConfig() *Config {
	return &Config{
		Listen:        DefaultListen,
		Admin:         DefaultAdmin,
		ShutdownGrace: Duration(DefaultShutdownGrace),
		Workers:       1,
		Log:           LogConfig{Level: "info", Format: "json", AccessLog: AccessLogConfig{Sample: 1}},
		Limits: Limits{
			MaxBody:           DefaultMaxBody,
			ReadTimeout:       Duration(DefaultReadTimeout),
			IdleTimeout:       Duration(DefaultIdleTimeout),
			MaxHeaderSize:     DefaultMaxHeaderSize,
			ReduceMemory:      true,
			Admission:         NewAdmission(),
			MaxParkedStreams:  DefaultMaxParkedStreams,
			StreamIdleTimeout: Duration(DefaultStreamIdleTimeout),
		},
		Backends: map[string]*Backend{},
	}
}

// NewBackend returns a Backend named name holding every default and no addresses.
func NewBackend(name string) *Backend {
	return &Backend{
		Name:            name,
		Transport:       TransportTCP,
		Connections:     AutoConnections(),
		DataMIME:        DefaultDataMIME,
		MetadataMIME:    DefaultMetadataMIME,
		Keepalive:       Duration(DefaultKeepalive),
		MaxLifetime:     Duration(DefaultMaxLifetime),
		MaxInflight:     DefaultMaxInflight,
		DialTimeout:     Duration(DefaultDialTimeout),
		ResolveInterval: Duration(DefaultResolveInterval),
		Reconnect:       Reconnect{MinBackoff: Duration(DefaultMinBackoff), MaxBackoff: Duration(DefaultMaxBackoff)},
		Resume:          NewBackendResume(),
		HTTP:            NewHTTPOptions(),
		Balancer:        BalancerWeighted,
		Outlier:         newOutlier(),
	}
}

// NewRoute returns a Route with the given name and interaction and every default that depends only on the
// interaction (method, timeout, stream and websocket sections). MaxBody is left 0, which Validate resolves
// to limits.max_body.
func NewRoute(name, interaction string) *Route {
	r := newRoute()
	r.Name, r.Interaction = name, interaction
	r.resolveDefaults(func(string) bool { return false })
	return r
}

// newRoute returns a Route holding the interaction-independent defaults; YAML is decoded over it.
func newRoute() *Route {
	return &Route{
		ForwardAuth: true,
		Stream:      newStreamConfig(),
		WebSocket: WebSocketConfig{
			MaxMessage:   DefaultWSMaxMessage,
			IdleTimeout:  Duration(DefaultWSIdleTimeout),
			PingInterval: Duration(DefaultWSPingInterval),
			MaxSessions:  DefaultWSMaxSessions,
		},
		Retry: newRetry(),
		Hedge: newHedge(),
	}
}

// resolveDefaults fills the defaults that depend on the interaction and clears the sections the
// interaction does not use (so a marshalled Config omits them). set reports whether the YAML gave a key
// of the route explicitly.
func (r *Route) resolveDefaults(set func(key string) bool) {
	if !set("method") && r.Method == "" {
		switch r.Interaction {
		case InteractionRequestStream, InteractionRequestChannel, InteractionRSocket:
			r.Method = "GET"
		case InteractionFireAndForget:
			r.Method = "POST"
		case InteractionHTTP:
			r.Method = MethodAny
		}
	}
	if !set("timeout") {
		switch r.Interaction {
		case InteractionRequestResponse, InteractionFireAndForget, InteractionHTTP:
			r.Timeout = Duration(DefaultRouteTimeout)
		default:
			r.Timeout = 0
		}
	}
	if !r.usesStream() {
		r.Stream = StreamConfig{}
	}
	if !r.IsWebSocket() {
		r.WebSocket = WebSocketConfig{}
	}
	r.resolveResilience(set, nil)
	r.resolveRSocketDefaults(set) // auth.go
}

func (r *Route) usesStream() bool {
	return r.Interaction == InteractionRequestStream || r.Interaction == InteractionRequestChannel
}

// IsRequired reports the route's "required" key (default true).
func (r *Route) IsRequired() bool { return r.Required == nil || *r.Required }

// IsWebSocket reports whether the route is served over a client WebSocket (request-channel, rsocket).
func (r *Route) IsWebSocket() bool {
	return r.Interaction == InteractionRequestChannel || r.Interaction == InteractionRSocket
}

// Backend returns the backend with the given name, or nil.
func (c *Config) Backend(name string) *Backend {
	return c.Backends[name]
}

// Load reads and parses the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}
