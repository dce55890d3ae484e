package mapping

import (
	"errors"
	"math"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Validate checks a configuration built in Go (Parse and Load validate already) and resolves the one
// default that depends on another section: a route MaxBody of 0 becomes limits.max_body. Errors are a
// *ConfigError; without a YAML source they carry the Line fields of routes and backends when set.
func (c *Config) Validate() error {
	errs := &errorList{file: c.File}
	c.resolveAdmissionGo()
	for _, r := range c.Routes {
		if r != nil && r.MaxBody == 0 {
			r.MaxBody = c.Limits.MaxBody
		}
		if r != nil {
			r.resolveShadow(c, func(string) bool { return true }) // only empty mode and zero timeout
		}
	}
	c.validate(errs)
	return errs.err()
}

// lineOf returns the line of field or of its closest recorded parent, 0 if none.
func (c *Config) lineOf(field string) int {
	for field != "" {
		if l, ok := c.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// validator reports problems at the line of the field concerned.
type validator struct {
	c    *Config
	errs *errorList
}

func (v *validator) add(field, format string, args ...any) {
	for f := field; ; {
		if v.c.bad[f] {
			return
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	v.errs.add(v.c.lineOf(field), field, format, args...)
}

func (c *Config) validate(errs *errorList) {
	if c.lines == nil {
		c.lines = map[string]int{}
	}
	for name, b := range c.Backends {
		if _, ok := c.lines["backends."+name]; !ok && b != nil && b.Line > 0 {
			c.lines["backends."+name] = b.Line
		}
	}
	for i, r := range c.Routes {
		key := "routes[" + strconv.Itoa(i) + "]"
		if _, ok := c.lines[key]; !ok && r != nil && r.Line > 0 {
			c.lines[key] = r.Line
		}
	}
	v := &validator{c: c, errs: errs}
	v.hostPort("listen", c.Listen, false)
	if c.Admin != "" && c.Admin != "off" {
		v.hostPort("admin", c.Admin, false)
		if c.Admin == c.Listen && !strings.HasSuffix(c.Listen, ":0") { // port 0: two distinct ephemeral ports
			v.add("admin", "same address as listen (%q)", c.Listen)
		}
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "console")
	if s := c.Log.AccessLog.Sample; !(s >= 0 && s <= 1) {
		v.add("log.access_log.sample", "must be between 0 and 1, got %v", s)
	}
	if c.Limits.MaxBody <= 0 {
		v.add("limits.max_body", "must be greater than 0")
	}
	if c.Limits.MaxParkedStreams < 0 {
		v.add("limits.max_parked_streams", "must not be negative")
	}
	if c.Limits.StreamIdleTimeout < 0 {
		v.add("limits.stream_idle_timeout", "must not be negative (0 turns it off)")
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		v.add("workers", "must be between 1 and %d, or \"auto\" (one per core), got %d", MaxWorkers, c.Workers)
	} else if c.Workers > 1 && runtime.GOOS != "linux" {
		v.add("workers", "%d workers need Linux (the kernel spreads connections over the workers' SO_REUSEPORT sockets); use 1 on %s", c.Workers, runtime.GOOS)
	}
	if c.Limits.MaxConnections < 0 {
		v.add("limits.max_connections", "must not be negative")
	}
	if c.Limits.MaxConnectionsPerIP < 0 {
		v.add("limits.max_connections_per_ip", "must not be negative")
	}
	if c.Limits.MaxHeaderSize < 1024 {
		v.add("limits.max_header_size", "must be at least 1KiB (1024), got %d", c.Limits.MaxHeaderSize)
	}
	if t := c.TLS; t != nil {
		if t.Cert == "" {
			v.add("tls.cert", "required when tls is set")
		}
		if t.Key == "" {
			v.add("tls.key", "required when tls is set")
		}
		if t.ClientAuth != "" {
			if v.oneOf("tls.client_auth", t.ClientAuth, ClientAuthRequest, ClientAuthRequire) && t.ClientCA == "" {
				v.add("tls.client_auth", "needs tls.client_ca (the CAs that sign client certificates)")
			}
		}
		if t.ReloadInterval != nil && *t.ReloadInterval < 0 {
			v.add("tls.reload_interval", "must not be negative (0 = reload only on SIGHUP)")
		}
	}
	v.cors("cors", c.CORS, false)                 // cors.go
	v.rateLimit("rate_limit", c.RateLimit, false) // ratelimit.go
	for _, name := range sortedKeys(c.Backends) {
		v.backend("backends."+name, name, c.Backends[name])
	}
	v.authProviders() // auth.go
	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is required")
	}
	names := map[string]int{}
	shapes := map[string]int{} // method + " " + path shape -> route index
	for i, r := range c.Routes {
		v.route("routes["+strconv.Itoa(i)+"]", i, r, names, shapes)
	}
	v.overload() // admission.go
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ { // insertion sort: small maps, no extra import
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func (v *validator) oneOf(field, val string, allowed ...string) bool {
	for _, a := range allowed {
		if val == a {
			return true
		}
	}
	msg := "invalid value " + strconv.Quote(val) + " (one of " + strings.Join(allowed, ", ") + ")"
	if val == "" {
		msg = "required (one of " + strings.Join(allowed, ", ") + ")"
	} else if s := suggest(val, allowed); s != "" {
		msg = "invalid value " + strconv.Quote(val) + " (did you mean " + strconv.Quote(s) + "?)"
	}
	v.add(field, "%s", msg)
	return false
}

// hostPort checks "host:port" with a numeric port; needHost requires a non-empty host.
func (v *validator) hostPort(field, addr string, needHost bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, nerr := strconv.ParseUint(addr, 10, 16); nerr == nil {
			v.add(field, "invalid address %q (want host:port, e.g. \":%s\")", addr, addr)
		} else {
			v.add(field, "invalid address %q (want host:port)", addr)
		}
		return
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (needHost && p == 0) {
		v.add(field, "invalid port in %q", addr)
		return
	}
	if needHost && host == "" {
		v.add(field, "missing host in %q", addr)
		return
	}
	if strings.ContainsAny(host, " /?#@\t") {
		v.add(field, "invalid host in %q", addr)
	}
}

func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

const maxMillis32 = time.Duration(math.MaxInt32) * time.Millisecond

func (v *validator) backend(f, name string, b *Backend) {
	if b == nil {
		v.add(f, "empty backend")
		return
	}
	if !validName(name) {
		v.add(f, "invalid backend name %q (letters, digits, '.', '_' and '-')", name)
	}
	ok := v.oneOf(f+".transport", b.Transport, TransportTCP, TransportWebSocket, TransportHTTP)
	if len(b.Addresses) == 0 {
		v.add(f+".addresses", "at least one address is required")
	}
	seen := map[string]int{}
	for i, a := range b.Addresses {
		af := f + ".addresses[" + strconv.Itoa(i) + "]"
		if j, dup := seen[a]; dup {
			v.add(af, "duplicate address %q (also addresses[%d])", a, j)
			continue
		}
		seen[a] = i
		if ok {
			v.address(af, b.Transport, a)
		}
	}
	if b.Connections < 1 || b.Connections > 1024 {
		v.add(f+".connections", "must be between 1 and 1024, got %d", b.Connections)
	}
	v.mime(f+".data_mime", b.DataMIME)
	v.mime(f+".metadata_mime", b.MetadataMIME)
	if b.Keepalive < Duration(time.Millisecond) || b.Keepalive.D() > maxMillis32 {
		v.add(f+".keepalive", "must be between 1ms and 2^31-1 ms, got %s", b.Keepalive)
	}
	if b.MaxLifetime.D() > maxMillis32 {
		v.add(f+".max_lifetime", "must be at most 2^31-1 ms, got %s", b.MaxLifetime)
	} else if b.MaxLifetime <= b.Keepalive {
		v.add(f+".max_lifetime", "must be greater than keepalive (%s), got %s", b.Keepalive, b.MaxLifetime)
	}
	if b.MaxInflight < 1 {
		v.add(f+".max_inflight", "must be at least 1, got %d", b.MaxInflight)
	}
	if b.DialTimeout <= 0 {
		v.add(f+".dial_timeout", "must be greater than 0")
	}
	if b.MTU != 0 && (b.MTU < MinMTU || b.MTU > frame.MaxFrameLen) {
		v.add(f+".mtu", "must be 0 (no fragmentation) or between %d and 16777215, got %d", MinMTU, b.MTU)
	}
	if t := b.TLS; t != nil && (t.Cert == "") != (t.Key == "") {
		if t.Cert == "" {
			v.add(f+".tls.cert", "required when tls.key is set")
		} else {
			v.add(f+".tls.key", "required when tls.cert is set")
		}
	}
	if b.Transport == TransportHTTP {
		v.httpOptions(f+".http", &b.HTTP)
	}
	v.backendResume(f+".resume", b)
	v.balancing(f, b)
	if b.Reconnect.MinBackoff <= 0 {
		v.add(f+".reconnect.min_backoff", "must be greater than 0")
	} else if b.Reconnect.MaxBackoff < b.Reconnect.MinBackoff {
		v.add(f+".reconnect.max_backoff", "must be at least min_backoff (%s), got %s",
			b.Reconnect.MinBackoff, b.Reconnect.MaxBackoff)
	}
}

func (v *validator) mime(field, m string) {
	if m == "" {
		v.add(field, "required")
		return
	}
	if len(m) > 255 {
		v.add(field, "longer than 255 bytes")
		return
	}
	for i := 0; i < len(m); i++ {
		if m[i] <= ' ' || m[i] >= 0x7f {
			v.add(field, "invalid MIME type %q (printable ASCII only)", m)
			return
		}
	}
}

func (v *validator) address(field, transport, a string) {
	switch transport {
	case TransportTCP:
		if strings.Contains(a, "://") {
			v.add(field, "invalid address %q: transport tcp takes host:port, not a URL", a)
			return
		}
		v.hostPort(field, a, true)
	case TransportWebSocket:
		v.url(field, a, "ws", "wss")
	case TransportHTTP:
		v.url(field, a, "http", "https")
	}
}

func (v *validator) url(field, a string, schemes ...string) {
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || u.Opaque != "" {
		v.add(field, "invalid URL %q (want %s://host:port/path)", a, schemes[0])
		return
	}
	if u.Scheme != schemes[0] && u.Scheme != schemes[1] {
		v.add(field, "invalid URL %q: scheme must be %s or %s", a, schemes[0], schemes[1])
		return
	}
	if u.User != nil || u.Fragment != "" {
		v.add(field, "invalid URL %q: no user info or fragment allowed", a)
		return
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			v.add(field, "invalid port in %q", a)
			return
		}
	}
	if u.Hostname() == "" {
		v.add(field, "missing host in %q", a)
	}
}

var interactions = []string{
	InteractionRequestResponse, InteractionFireAndForget, InteractionRequestStream,
	InteractionRequestChannel, InteractionRSocket, InteractionHTTP,
}

func (v *validator) route(f string, i int, r *Route, names, shapes map[string]int) {
	if r == nil {
		v.add(f, "empty route")
		return
	}
	switch {
	case r.Name == "":
		v.add(f+".name", "required")
	case !validName(r.Name):
		v.add(f+".name", "invalid name %q (letters, digits, '.', '_' and '-')", r.Name)
	default:
		if j, dup := names[r.Name]; dup {
			v.add(f+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
		} else {
			names[r.Name] = i
		}
	}
	interactionOK := v.oneOf(f+".interaction", r.Interaction, interactions...)

	// Backend: must exist and suit the interaction.
	if r.Backend == "" {
		v.add(f+".backend", "required")
	} else if b := v.c.Backends[r.Backend]; b == nil {
		msg := "unknown backend " + strconv.Quote(r.Backend)
		if s := suggest(r.Backend, sortedKeys(v.c.Backends)); s != "" {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		}
		v.add(f+".backend", "%s", msg)
	} else if interactionOK {
		if r.Interaction == InteractionHTTP && b.Transport != TransportHTTP {
			v.add(f+".backend", "interaction http needs a backend with transport http; %q is %s", r.Backend, b.Transport)
		} else if r.Interaction != InteractionHTTP && b.Transport == TransportHTTP {
			v.add(f+".backend", "backend %q has transport http, which serves only interaction http", r.Backend)
		}
	}

	// Method.
	if up := strings.ToUpper(r.Method); up != r.Method && isToken(r.Method) {
		r.Method = up // only on change: validating a parsed config again writes nothing
	}
	switch {
	case r.Method == "":
		if interactionOK {
			v.add(f+".method", "required for interaction %s", r.Interaction)
		}
	case r.IsWebSocket() && r.Method != "GET":
		v.add(f+".method", "interaction %s is a WebSocket upgrade and only takes GET, got %q", r.Interaction, r.Method)
	case r.Method == MethodAny:
	case !isToken(r.Method):
		v.add(f+".method", "invalid method %q", r.Method)
	}

	// Path and the templates that refer to its parameters.
	var params []string
	if r.Path == "" {
		v.add(f+".path", "required")
	} else if t, err := ParsePathTemplate(r.Path); err != nil {
		v.add(f+".path", "%s", err.Error())
	} else {
		params = t.params
		if r.Method != "" {
			key := r.Method + " " + t.shape()
			if j, dup := shapes[key]; dup {
				v.add(f+".path", "%s %s conflicts with routes[%d] (%s %s)", r.Method, r.Path, j,
					v.c.Routes[j].Method, v.c.Routes[j].Path)
			} else {
				shapes[key] = i
			}
		}
		if r.Route != "" {
			if r.Interaction == InteractionRSocket || r.Interaction == InteractionHTTP && !r.targetsTransport(v.c, false) {
				v.add(f+".route", "not used by interaction %s", r.Interaction)
			} else if tpl, err := ParseTemplate(r.Route, params); err != nil {
				v.add(f+".route", "%s", err.Error())
			} else if n := tpl.literalLen(); n > 255 {
				v.add(f+".route", "routing tag longer than 255 bytes")
			}
		}
		if r.Rewrite != "" {
			if !strings.HasPrefix(r.Rewrite, "/") {
				v.add(f+".rewrite", "must start with \"/\"")
			} else if _, err := ParseTemplate(r.Rewrite, params); err != nil {
				v.add(f+".rewrite", "%s", err.Error())
			}
		}
	}

	if r.usesStream() {
		v.oneOf(f+".stream.format", r.Stream.Format, StreamAuto, StreamSSE, StreamNDJSON)
		if r.Stream.Window < 1 || r.Stream.Window > MaxWindow {
			v.add(f+".stream.window", "must be between 1 and 2147483647, got %d", r.Stream.Window)
		}
		v.streamKeys(f, r) // stream_keys.go
	}
	if r.MaxBody <= 0 {
		v.add(f+".max_body", "must be greater than 0")
	}
	seen := map[string]int{}
	for j, h := range r.ForwardHeaders {
		hf := f + ".forward_headers[" + strconv.Itoa(j) + "]"
		if !isToken(h) {
			v.add(hf, "invalid header name %q", h)
			continue
		}
		if k, dup := seen[strings.ToLower(h)]; dup {
			v.add(hf, "duplicate header %q (also forward_headers[%d])", h, k)
			continue
		}
		seen[strings.ToLower(h)] = j
	}
	for _, key := range sortedKeys(r.Errors) {
		ef := f + ".errors." + key
		if _, isCode, err := parseErrorKey(key); err != nil {
			v.add(ef, "%s", err.Error())
		} else if !isCode && key == "" {
			v.add(ef, "empty message prefix")
		}
		if s := r.Errors[key]; s < 200 || s > 599 {
			v.add(ef, "HTTP status must be between 200 and 599, got %d", s)
		}
	}
	if r.IsWebSocket() {
		if r.WebSocket.MaxMessage <= 0 {
			v.add(f+".websocket.max_message", "must be greater than 0")
		}
		if r.WebSocket.MaxSessions < 0 {
			v.add(f+".websocket.max_sessions", "must not be negative (0 = no limit)")
		}
		for j, o := range r.WebSocket.Origins {
			of := f + ".websocket.origins[" + strconv.Itoa(j) + "]"
			if o == "*" {
				continue
			}
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				v.add(of, "invalid origin %q (want scheme://host[:port] or \"*\")", o)
			}
		}
	}
	v.migration(f, r)
	if r.CORS != nil && r.IsWebSocket() {
		v.add(f+".cors", "not for interaction %s (browsers do not apply CORS to WebSockets; use websocket.origins)", r.Interaction)
	} else {
		v.cors(f+".cors", r.CORS, true)
	}
	v.rateLimit(f+".rate_limit", r.RateLimit, false)
	v.rateLimit(f+".websocket.rate_limit", r.WebSocket.RateLimit, true)
	v.resilience(f, r)
	v.routeAuth(f, r)     // auth.go
	v.rsocketPolicy(f, r) // auth.go
	if r.RSocket != nil {
		v.rsocketResume(f+".rsocket.resume", r.RSocket.Resume)
		for _, pat := range sortedKeys(r.RSocket.Routes) {
			pf := f + ".rsocket.routes." + pat
			if pat == "" || strings.Contains(strings.TrimSuffix(pat, "*"), "*") {
				v.add(pf, "invalid pattern %q (an exact tag or a prefix ending in \"*\")", pat)
			}
			name := r.RSocket.Routes[pat]
			if b := v.c.Backends[name]; b == nil {
				v.add(pf, "unknown backend %q", name)
			} else if b.Transport == TransportHTTP {
				v.add(pf, "backend %q has transport http; rsocket routes need an RSocket backend", name)
			}
		}
	}
}

// isToken reports whether s is a non-empty RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// parseErrorKey splits an "errors" key: a decimal or 0x-hex integer is an RSocket error code, anything
// else a prefix of the APPLICATION_ERROR message.
func parseErrorKey(key string) (code uint32, isCode bool, err error) {
	digits := key
	if len(key) > 2 && key[0] == '0' && (key[1] == 'x' || key[1] == 'X') {
		digits = key[2:]
		for i := 0; i < len(digits); i++ {
			if c := digits[i] | 0x20; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return 0, false, nil
			}
		}
	} else {
		for i := 0; i < len(digits); i++ {
			if c := digits[i]; c < '0' || c > '9' {
				return 0, false, nil
			}
		}
	}
	if digits == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseUint(key, 0, 32)
	if perr != nil {
		return 0, false, errors.New("error code " + key + " out of range (0 to 0xFFFFFFFF)")
	}
	return uint32(n), true, nil
}
