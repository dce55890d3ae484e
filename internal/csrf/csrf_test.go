package csrf

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestCrossSite(t *testing.T) {
	for _, tc := range []struct {
		host, origin, fetchSite string
		want                    bool
	}{
		{"admin:9901", "", "", false},                    // curl, scripts
		{"admin:9901", "http://admin:9901", "", false},   // the page itself
		{"admin:9901", "HTTP://ADMIN:9901", "", false},   // hosts compare case-insensitively
		{"admin:9901", "https://evil.example", "", true}, // another site
		{"admin:9901", "http://admin:9902", "", true},    // another port is another origin
		{"admin:9901", "null", "", true},                 // opaque origin (sandboxed frame, file:)
		{"admin:9901", "%zz", "", true},                  // unparsable
		{"admin:9901", "", "cross-site", true},           // Fetch metadata without Origin
		{"admin:9901", "", "same-site", true},            // a sibling subdomain is not us either
		{"admin:9901", "http://admin:9901", "same-origin", false},
		{"admin:9901", "", "none", false}, // typed in the address bar
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.SetHost(tc.host)
		if tc.origin != "" {
			ctx.Request.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			ctx.Request.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		if got := CrossSite(&ctx); got != tc.want {
			t.Errorf("Host %q Origin %q Sec-Fetch-Site %q: %v, want %v", tc.host, tc.origin, tc.fetchSite, got, tc.want)
		}
	}
}
