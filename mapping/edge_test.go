package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const edgeBase = `backends:
  demo: {addresses: ["127.0.0.1:7878"]}
routes:
  - name: chat
    path: /ws/chat
    backend: demo
    interaction: request-channel
`

// The edge-security keys (issue 10 items 1, 7, 8, 10, 11): defaults, and -check messages.
func TestEdgeKeys(t *testing.T) {
	cfg, err := Parse([]byte(edgeBase), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if cfg.Limits.MaxConnections != 0 || cfg.Limits.MaxConnectionsPerIP != 0 || cfg.AdminTokenFile != "" ||
		r.WebSocket.MaxSessions != DefaultWSMaxSessions || !r.IsRequired() {
		t.Fatalf("defaults: limits %+v token %q max_sessions %d required %v", cfg.Limits, cfg.AdminTokenFile, r.WebSocket.MaxSessions, r.IsRequired())
	}
	src := `admin_token_file: /etc/rsgate/admin.token
limits: {max_connections: 5000, max_connections_per_ip: 64}
tls: {cert: c.pem, key: k.pem, client_ca: ca.pem, client_auth: request, reload_interval: 1m}
` + edgeBase + `    required: false
    websocket: {max_sessions: 10}
`
	cfg, err = Parse([]byte(src), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r = cfg.Routes[0]
	if cfg.AdminTokenFile != "/etc/rsgate/admin.token" || cfg.Limits.MaxConnections != 5000 || cfg.Limits.MaxConnectionsPerIP != 64 ||
		r.WebSocket.MaxSessions != 10 || r.IsRequired() || cfg.TLS.EffectiveClientAuth() != ClientAuthRequest ||
		cfg.TLS.EffectiveReloadInterval() != time.Minute {
		t.Fatalf("parsed: %+v %+v %+v", cfg.Limits, r.WebSocket, cfg.TLS)
	}
	if (&IngressTLS{ClientCA: "ca.pem"}).EffectiveClientAuth() != ClientAuthRequire || (&IngressTLS{}).EffectiveClientAuth() != "" ||
		(&IngressTLS{}).EffectiveReloadInterval() != DefaultTLSReloadInterval {
		t.Error("tls defaults")
	}
	for _, tc := range []struct{ src, want string }{
		{"limits: {max_connections_per_ip: -1}\n" + edgeBase, "c.yaml:1: limits.max_connections_per_ip: must not be negative"},
		{"limits: {max_connections: -1}\n" + edgeBase, "c.yaml:1: limits.max_connections: must not be negative"},
		{edgeBase + "    websocket: {max_sessions: -2}\n", "c.yaml:8: routes[0].websocket.max_sessions: must not be negative (0 = no limit)"},
		{"tls: {cert: c, key: k, client_ca: ca, client_auth: maybe}\n" + edgeBase, `c.yaml:1: tls.client_auth: invalid value "maybe" (one of request, require)`},
		{"tls: {cert: c, key: k, client_auth: require}\n" + edgeBase, "c.yaml:1: tls.client_auth: needs tls.client_ca"},
		{edgeBase + "    required: maybe\n", `c.yaml:8: routes[0].required: expected true or false`},
	} {
		_, err := Parse([]byte(tc.src), "c.yaml")
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}
