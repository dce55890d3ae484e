package mapping

import (
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authentication provider types (the values of an auth provider's "type" key).
const (
	AuthJWT    = "jwt"     // JSON Web Tokens verified with a JWK Set (file or URL)
	AuthAPIKey = "api_key" // static keys compared by their SHA-256
)

// Values of a route's "rsocket.client_metadata" key.
const (
	ClientMetadataStrip  = "strip"
	ClientMetadataReject = "reject"
)

// Defaults of the auth and rsocket sections.
const (
	DefaultAuthLeeway          = 30 * time.Second
	DefaultJWKSRefresh         = 5 * time.Minute
	DefaultJWKSMinRefresh      = 10 * time.Second
	DefaultJWKSFetchTimeout    = 5 * time.Second
	DefaultJWKSMaxSize         = 1 << 20
	DefaultTokenCacheSize      = 10000
	DefaultAPIKeyHeader        = "X-API-Key"
	DefaultRSocketMaxStreams   = 256
	MaxRSocketMaxStreams       = 1 << 20
	MaxAuthLeeway              = 5 * time.Minute
	MaxTokenCacheSize          = 1 << 20
	DefaultRSocketClientMDMode = ClientMetadataStrip
)

// JWTAlgorithms are the JWS algorithms a jwt provider accepts ("alg: none" never is).
var JWTAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "EdDSA"}

// AuthProvider is one entry of "auth": how credentials are verified. The YAML key is its name.
type AuthProvider struct {
	// Name is the key under "auth". Not a YAML key.
	Name string `yaml:"-"`
	// Line is the YAML line of the name (0 for configs built in Go). Not a YAML key.
	Line int `yaml:"-"`

	// Type is jwt | api_key. Key "type", required.
	Type string `yaml:"type"`

	// JWKSFile is a JWK Set file (RFC 7517), re-read when it changes (checked every refresh_interval and
	// on a token with an unknown kid, at most every min_refresh_interval). Key "jwks_file"; jwt needs
	// exactly one of jwks_file and jwks_url.
	JWKSFile string `yaml:"jwks_file,omitempty"`
	// JWKSURL is a JWK Set URL (https; http only for a loopback host), fetched at start, every
	// refresh_interval and on an unknown kid (at most every min_refresh_interval), each fetch bounded by
	// fetch_timeout and max_jwks_size. Key "jwks_url".
	JWKSURL string `yaml:"jwks_url,omitempty"`
	// Issuer is the required "iss" claim. Key "issuer", default "" = not checked.
	Issuer string `yaml:"issuer,omitempty"`
	// Audiences: the token's "aud" must hold one of them. Key "audiences", default none = not checked.
	Audiences []string `yaml:"audiences,omitempty"`
	// Leeway is the clock skew allowed on exp and nbf. Key "leeway", default 30s; 0..5m.
	Leeway Duration `yaml:"leeway"`
	// Algorithms restricts the accepted JWS algorithms. Key "algorithms", default all of HS256 HS384
	// HS512 RS256 PS256 ES256 EdDSA.
	Algorithms []string `yaml:"algorithms,omitempty"`
	// RefreshInterval is how often the JWK Set is re-read. Key "refresh_interval", default 5m (also for 0).
	RefreshInterval Duration `yaml:"refresh_interval"`
	// MinRefreshInterval rate-limits re-reads caused by unknown kids. Key "min_refresh_interval",
	// default 10s; >= 0.
	MinRefreshInterval Duration `yaml:"min_refresh_interval"`
	// FetchTimeout bounds one jwks_url fetch. Key "fetch_timeout", default 5s (also for 0).
	FetchTimeout Duration `yaml:"fetch_timeout"`
	// MaxJWKSSize bounds the JWK Set document, in bytes. Key "max_jwks_size", default 1 MiB (also for 0).
	MaxJWKSSize int `yaml:"max_jwks_size" unit:"bytes"`
	// CacheSize bounds the cache of verified tokens (kept until they expire, dropped when the key set
	// changes). Key "cache_size", default 10000; 0 = no cache.
	CacheSize int `yaml:"cache_size"`
	// ForwardClaims are the claims copied into the principal metadata entry backends receive. Key
	// "forward_claims", default none.
	ForwardClaims []string `yaml:"forward_claims,omitempty"`

	// Header is the request header carrying the API key. Key "header", default "X-API-Key" (api_key).
	Header string `yaml:"header,omitempty"`
	// Keys are the accepted API keys. Key "keys", at least one for api_key.
	Keys []APIKey `yaml:"keys,omitempty"`

	// QueryParam names a query parameter that may carry the credential on WebSocket upgrades (browsers
	// cannot set headers there); routes may override it. Key "query_param", default "" = none.
	QueryParam string `yaml:"query_param,omitempty"`
}

// APIKey is one entry of an api_key provider's "keys".
type APIKey struct {
	// Name is the subject of requests authenticated with the key. Key "name", required, unique.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the key (64 hex digits; the key itself is never configured). Key
	// "sha256", required.
	SHA256 string `yaml:"sha256"`
}

// RouteAuth is a route's "auth": "auth: NAME" is short for "auth: {provider: NAME}".
type RouteAuth struct {
	// Provider names an entry of "auth". Key "auth.provider", required.
	Provider string `yaml:"provider"`
	// Scopes must all be granted by the token ("scope" or "scp" claim); otherwise 403. Key
	// "auth.scopes", default none.
	Scopes []string `yaml:"scopes,omitempty"`
	// QueryParam overrides the provider's query_param for this route. Key "auth.query_param".
	QueryParam string `yaml:"query_param,omitempty"`
}

// scalarShorthand is implemented by sections that may be written as one string.
type scalarShorthand interface{ setScalar(string) }

func (a *RouteAuth) setScalar(s string) { a.Provider = s }

// NewAuthProvider returns a provider named name holding every default.
func NewAuthProvider(name string) *AuthProvider {
	return &AuthProvider{
		Name:               name,
		Leeway:             Duration(DefaultAuthLeeway),
		RefreshInterval:    Duration(DefaultJWKSRefresh),
		MinRefreshInterval: Duration(DefaultJWKSMinRefresh),
		FetchTimeout:       Duration(DefaultJWKSFetchTimeout),
		MaxJWKSSize:        DefaultJWKSMaxSize,
		CacheSize:          DefaultTokenCacheSize,
	}
}

// resolveRSocketDefaults: on rsocket routes forward_auth defaults to false (client authentication
// entries are stripped, so a backend can trust the ones it sees), and the rsocket section's defaults.
func (r *Route) resolveRSocketDefaults(set func(key string) bool) {
	if r.Interaction != InteractionRSocket {
		return
	}
	if !set("forward_auth") {
		r.ForwardAuth = false
	}
	if r.RSocket != nil {
		if r.RSocket.MaxStreams == 0 {
			r.RSocket.MaxStreams = DefaultRSocketMaxStreams
		}
		if r.RSocket.ClientMetadata == "" {
			r.RSocket.ClientMetadata = DefaultRSocketClientMDMode
		}
	}
}

// AuthProvider returns the provider with the given name, or nil.
func (c *Config) AuthProvider(name string) *AuthProvider { return c.Auth[name] }

func (v *validator) authProviders() {
	for _, name := range sortedKeys(v.c.Auth) {
		f := "auth." + name
		p := v.c.Auth[name]
		if p == nil {
			v.add(f, "empty provider")
			continue
		}
		if p.Name == "" {
			p.Name = name
		}
		if _, ok := v.c.lines[f]; !ok && p.Line > 0 {
			v.c.lines[f] = p.Line
		}
		if !validName(name) {
			v.add(f, "invalid provider name %q (letters, digits, '.', '_', '-')", name)
		}
		if p.QueryParam != "" && !isToken(p.QueryParam) {
			v.add(f+".query_param", "invalid query parameter name %q", p.QueryParam)
		}
		switch p.Type {
		case AuthJWT:
			v.jwtProvider(f, p)
		case AuthAPIKey:
			v.apiKeyProvider(f, p)
		case "":
			v.add(f+".type", "required: jwt or api_key")
		default:
			v.add(f+".type", "must be jwt or api_key, got %q", p.Type)
		}
	}
}

func (v *validator) jwtProvider(f string, p *AuthProvider) {
	switch {
	case p.JWKSFile == "" && p.JWKSURL == "":
		v.add(f, "jwt needs jwks_file or jwks_url")
	case p.JWKSFile != "" && p.JWKSURL != "":
		v.add(f+".jwks_url", "give jwks_file or jwks_url, not both")
	case p.JWKSURL != "":
		u, err := url.Parse(p.JWKSURL)
		switch {
		case err != nil || u.Host == "":
			v.add(f+".jwks_url", "invalid URL %q", p.JWKSURL)
		case u.Scheme == "https":
		case u.Scheme == "http" && loopbackHost(u.Hostname()):
		default:
			v.add(f+".jwks_url", "must be https (http only for a loopback host), got %q", p.JWKSURL)
		}
	}
	if l := p.Leeway.D(); l < 0 || l > MaxAuthLeeway {
		v.add(f+".leeway", "must be between 0 and %s, got %s", MaxAuthLeeway, p.Leeway)
	}
	for i, a := range p.Audiences {
		if a == "" {
			v.add(f+".audiences["+strconv.Itoa(i)+"]", "empty audience")
		}
	}
	for i, a := range p.Algorithms {
		ok := false
		for _, k := range JWTAlgorithms {
			ok = ok || a == k
		}
		if !ok {
			v.add(f+".algorithms["+strconv.Itoa(i)+"]", "unsupported algorithm %q (supported: %s)", a, strings.Join(JWTAlgorithms, ", "))
		}
	}
	// 0 for refresh_interval, fetch_timeout and max_jwks_size means the default (configs built in Go).
	if p.RefreshInterval < 0 {
		v.add(f+".refresh_interval", "must not be negative")
	}
	if p.MinRefreshInterval < 0 {
		v.add(f+".min_refresh_interval", "must not be negative")
	}
	if p.FetchTimeout < 0 {
		v.add(f+".fetch_timeout", "must not be negative")
	}
	if p.MaxJWKSSize < 0 {
		v.add(f+".max_jwks_size", "must not be negative")
	}
	if p.CacheSize < 0 || p.CacheSize > MaxTokenCacheSize {
		v.add(f+".cache_size", "must be between 0 and %d, got %d", MaxTokenCacheSize, p.CacheSize)
	}
	for i, c := range p.ForwardClaims {
		if c == "" || len(c) > 255 {
			v.add(f+".forward_claims["+strconv.Itoa(i)+"]", "claim names are 1..255 bytes")
		}
	}
	if p.Header != "" || len(p.Keys) > 0 {
		v.add(f, "header and keys are for type api_key")
	}
}

func (v *validator) apiKeyProvider(f string, p *AuthProvider) {
	if p.Header == "" {
		p.Header = DefaultAPIKeyHeader
	} else if !isToken(p.Header) {
		v.add(f+".header", "invalid header name %q", p.Header)
	}
	if len(p.Keys) == 0 {
		v.add(f+".keys", "at least one key is required")
	}
	names := map[string]bool{}
	for i, k := range p.Keys {
		kf := f + ".keys[" + strconv.Itoa(i) + "]"
		if k.Name == "" {
			v.add(kf+".name", "required")
		} else if names[k.Name] {
			v.add(kf+".name", "duplicate key name %q", k.Name)
		}
		names[k.Name] = true
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
			v.add(kf+".sha256", "must be the 64 hex digits of the key's SHA-256 (e.g. printf %%s KEY | sha256sum)")
		}
	}
	if p.JWKSFile != "" || p.JWKSURL != "" || p.Issuer != "" || len(p.Audiences) > 0 || len(p.ForwardClaims) > 0 {
		v.add(f, "jwks_file, jwks_url, issuer, audiences and forward_claims are for type jwt")
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) routeAuth(f string, r *Route) {
	a := r.Auth
	if a == nil {
		return
	}
	af := f + ".auth"
	if a.Provider == "" {
		v.add(af+".provider", "required (the name of an entry of auth)")
	} else if p := v.c.Auth[a.Provider]; p == nil {
		v.add(af+".provider", "unknown auth provider %q", a.Provider)
	} else if p.Type == AuthAPIKey && len(a.Scopes) > 0 {
		v.add(af+".scopes", "API keys grant no scopes: provider %q is an api_key provider", a.Provider)
	}
	for i, s := range a.Scopes {
		if s == "" || strings.ContainsAny(s, " \t") || len(s) > 255 {
			v.add(af+".scopes["+strconv.Itoa(i)+"]", "invalid scope %q", s)
		}
	}
	if a.QueryParam != "" && !isToken(a.QueryParam) {
		v.add(af+".query_param", "invalid query parameter name %q", a.QueryParam)
	}
}

func (v *validator) rsocketPolicy(f string, r *Route) {
	if r.Interaction != InteractionRSocket {
		return
	}
	if r.RSocket == nil || r.RSocket.Allow == nil {
		v.add(f+".rsocket.allow", "required for interaction rsocket: list the routing tags clients may use "+
			"(exact tags or \"prefix.*\"), or write allow: [\"*\"] to open the route to every tag on purpose")
		return
	}
	rs := r.RSocket
	for i, p := range rs.Allow {
		pf := f + ".rsocket.allow[" + strconv.Itoa(i) + "]"
		switch {
		case p == "*":
		case p == "" || len(p) > 255:
			v.add(pf, "invalid pattern %q", p)
		case strings.Contains(strings.TrimSuffix(p, ".*"), "*"):
			v.add(pf, "invalid pattern %q (an exact tag, a prefix ending in \".*\", or \"*\")", p)
		}
	}
	if rs.MaxStreams < 0 || rs.MaxStreams > MaxRSocketMaxStreams { // 0 (Go-built configs): the default
		v.add(f+".rsocket.max_streams", "must be between 1 and %d, got %d", MaxRSocketMaxStreams, rs.MaxStreams)
	}
	if rs.ClientMetadata != "" {
		v.oneOf(f+".rsocket.client_metadata", rs.ClientMetadata, ClientMetadataStrip, ClientMetadataReject)
	}
}
