package mapping

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/rsgate/rsgate/internal/httpmeta"
)

// CORSConfig is a "cors" section (top level, and per route where it replaces the top-level one as a
// whole). The gateway answers CORS preflight requests (OPTIONS with Access-Control-Request-Method) for
// the routes a policy covers and adds the Access-Control-* headers to their answers. WebSocket routes
// are not covered (browsers do not apply CORS to WebSockets): they use websocket.origins.
type CORSConfig struct {
	// Origins are the allowed Origin values: exact "https://app.example.com[:port]", a wildcard
	// subdomain "https://*.example.com[:port]" (one or more labels before the domain, not the domain
	// itself), or "*" for any origin. Key "origins"; required at the top level; on a route an empty list
	// turns CORS off for that route.
	Origins []string `yaml:"origins,omitempty"`
	// Methods are the methods a preflight may ask for. Key "methods", default: the methods that have a
	// route for the path (the route's own method).
	Methods []string `yaml:"methods,omitempty"`
	// Headers are the request headers a preflight may ask for (case-insensitive). Key "headers", default
	// [Content-Type] ("*" allows any header, without credentials only).
	Headers []string `yaml:"headers,omitempty"`
	// ExposeHeaders are the response headers the page may read besides the CORS-safelisted ones. Key
	// "expose_headers", default none.
	ExposeHeaders []string `yaml:"expose_headers,omitempty"`
	// Credentials allows cookies and HTTP authentication (Access-Control-Allow-Credentials: true). Key
	// "credentials", default false; not with origins ["*"] (the Fetch standard forbids it).
	Credentials bool `yaml:"credentials"`
	// MaxAge is how long a browser may cache a preflight answer (Access-Control-Max-Age, whole seconds).
	// Key "max_age", default 0 = not sent (browsers then cache for 5s).
	MaxAge Duration `yaml:"max_age"`
}

// DefaultCORSHeaders are the request headers allowed when a policy lists none.
var DefaultCORSHeaders = []string{"Content-Type"}

// OriginPattern is one parsed entry of cors.origins.
type OriginPattern struct {
	Any    bool   // "*"
	Prefix string // lower-cased "scheme://" for a wildcard, the whole origin for an exact entry
	Suffix string // lower-cased ".domain[:port]" for a wildcard; "" for an exact entry
}

// ParseOriginPattern parses an entry of cors.origins.
func ParseOriginPattern(s string) (OriginPattern, bool) {
	if s == "*" {
		return OriginPattern{Any: true}, true
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return OriginPattern{}, false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i] | 0x20
		if !('a' <= c && c <= 'z' || i > 0 && (scheme[i] >= '0' && scheme[i] <= '9' || scheme[i] == '+' || scheme[i] == '-' || scheme[i] == '.')) {
			return OriginPattern{}, false
		}
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] <= ' ' || rest[i] >= 0x7f { // origins are ASCII (IDNs in their punycode form)
			return OriginPattern{}, false
		}
	}
	wild := strings.HasPrefix(rest, "*.")
	host := rest
	if wild {
		host = rest[2:]
	}
	u, err := url.Parse(scheme + "://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || strings.ContainsAny(host, "*/ ") {
		return OriginPattern{}, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return OriginPattern{}, false
		}
	}
	if wild {
		if strings.HasPrefix(u.Hostname(), "[") || !strings.Contains(u.Hostname(), ".") && u.Hostname() != "localhost" {
			// "*.com" would allow every site of a TLD; IP literals have no subdomains.
			return OriginPattern{}, false
		}
		return OriginPattern{Prefix: strings.ToLower(scheme) + "://", Suffix: "." + strings.ToLower(host)}, true
	}
	return OriginPattern{Prefix: strings.ToLower(scheme + "://" + host)}, true
}

// MatchOrigin reports whether the Origin header value o is allowed by p (ASCII case-insensitive). It
// does not allocate.
func (p *OriginPattern) MatchOrigin(o []byte) bool {
	if p.Any {
		return true
	}
	if p.Suffix == "" {
		return httpmeta.EqualFold(o, p.Prefix)
	}
	n := len(o) - len(p.Prefix) - len(p.Suffix)
	if n <= 0 || !httpmeta.EqualFold(o[:len(p.Prefix)], p.Prefix) || !httpmeta.EqualFold(o[len(o)-len(p.Suffix):], p.Suffix) {
		return false
	}
	// The subdomain part: one or more DNS labels of [A-Za-z0-9-], dot-separated, none empty.
	sub := o[len(p.Prefix) : len(p.Prefix)+n]
	label := 0
	for _, c := range sub {
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c == '-' || '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// cors validates a cors section; route is true for a route's own section (where empty origins turn CORS
// off).
func (v *validator) cors(f string, c *CORSConfig, route bool) {
	if c == nil {
		return
	}
	if len(c.Origins) == 0 && !route {
		v.add(f+".origins", "at least one origin is required (\"*\" for any; remove cors to turn it off)")
	}
	anyOrigin := false
	for i, o := range c.Origins {
		of := f + ".origins[" + strconv.Itoa(i) + "]"
		p, ok := ParseOriginPattern(o)
		if !ok {
			v.add(of, "invalid origin %q (want scheme://host[:port], scheme://*.domain[:port] or \"*\")", o)
			continue
		}
		anyOrigin = anyOrigin || p.Any
	}
	if c.Credentials && anyOrigin {
		v.add(f+".credentials", "cannot be true with origins [\"*\"]: the Fetch standard forbids credentials with a wildcard origin; list the origins")
	}
	for i, m := range c.Methods {
		if !isToken(m) {
			v.add(f+".methods["+strconv.Itoa(i)+"]", "invalid method %q", m)
		}
	}
	for i, h := range c.Headers {
		if h == "*" {
			if c.Credentials {
				v.add(f+".headers["+strconv.Itoa(i)+"]", "\"*\" is not a wildcard with credentials (list the headers)")
			}
			continue
		}
		if !isToken(h) {
			v.add(f+".headers["+strconv.Itoa(i)+"]", "invalid header name %q", h)
		}
	}
	for i, h := range c.ExposeHeaders {
		if !isToken(h) {
			v.add(f+".expose_headers["+strconv.Itoa(i)+"]", "invalid header name %q", h)
		}
	}
	if c.MaxAge < 0 {
		v.add(f+".max_age", "must not be negative")
	}
}
