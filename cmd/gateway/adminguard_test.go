package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/demo"
)

// adminDo sends one request to the admin listener with the given Host (or none) and headers.
func adminDo(t *testing.T, method, url, host string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAdminHostAndOrigin(t *testing.T) {
	g, _ := startTestGateway(t)
	defer g.shutdown()
	addr := g.admin.ln.Addr().String()
	admin := "http://" + addr
	_, port, _ := strings.Cut(addr, ":")
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", 200}, // the address itself (an IP literal)
		{"localhost:" + port, 200},
		{"LOCALHOST", 200},
		{"[::1]:" + port, 200},
		{"10.1.2.3", 200},
		{"evil.example", 403},
		{"evil.example:" + port, 403},
		{"127.0.0.1.nip.io:" + port, 403},
	} {
		code, _, body := adminDo(t, "GET", admin+"/metrics", tc.host)
		if code != tc.want {
			t.Errorf("Host %q: %d, want %d (%s)", tc.host, code, tc.want, body)
		}
		if tc.want == 403 && !strings.Contains(body, codeAdminHost) {
			t.Errorf("Host %q: body %q, want code %s", tc.host, body, codeAdminHost)
		}
	}
	// A cross-site form POST to /reload (and DNS rebinding, above) is refused; same-origin and
	// non-browser POSTs go through.
	for _, tc := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"Origin", "https://evil.example"}, 403},
		{[]string{"Origin", "null"}, 403},
		{[]string{"Sec-Fetch-Site", "cross-site"}, 403},
		{[]string{"Origin", "http://" + addr}, 200},
		{nil, 200},
	} {
		code, _, body := adminDo(t, "POST", admin+"/reload", "", tc.hdr...)
		if code != tc.want {
			t.Errorf("POST /reload with %v: %d, want %d (%s)", tc.hdr, code, tc.want, body)
		}
		if tc.want == 403 && !strings.Contains(body, codeAdminOrigin) {
			t.Errorf("POST /reload with %v: body %q, want code %s", tc.hdr, body, codeAdminOrigin)
		}
	}
}

func TestAdminToken(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokFile, []byte("s3cret-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, path := startFromYAML(t, fmt.Sprintf(testConfig, d.Addr(), "")+"admin_token_file: "+tokFile+"\n")
	defer g.shutdown()
	admin := "http://" + g.admin.ln.Addr().String()
	check := func(path, auth string, want int) {
		t.Helper()
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		code, h, body := adminDo(t, "GET", admin+path, "", hdr...)
		if code != want {
			t.Errorf("GET %s with %q: %d, want %d (%s)", path, auth, code, want, body)
		}
		if want == 401 && (!strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, codeAdminUnauthorized)) {
			t.Errorf("GET %s with %q: WWW-Authenticate %q body %q", path, auth, h.Get("WWW-Authenticate"), body)
		}
	}
	for _, p := range []string{"/metrics", "/routes", "/backends", "/debug/pprof/"} {
		check(p, "", 401)
		check(p, "Bearer wrong", 401)
		check(p, "Bearer s3cret-on", 401)
		check(p, "Basic czNjcmV0LW9uZQ==", 401)
		check(p, "Bearer s3cret-one", 200)
		check(p, "bearer s3cret-one", 200)
	}
	check("/healthz", "", 200)
	check("/readyz", "", 200)
	if code, _, _ := adminDo(t, "POST", admin+"/reload", ""); code != 401 {
		t.Errorf("POST /reload without token: %d, want 401", code)
	}
	// The file is read again on reload.
	if err := os.WriteFile(tokFile, []byte("s3cret-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, body := adminDo(t, "POST", admin+"/reload", "", "Authorization", "Bearer s3cret-one"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	check("/metrics", "Bearer s3cret-one", 401)
	check("/metrics", "Bearer s3cret-two", 200)
	// A reload whose token file is gone fails and keeps the token.
	_ = os.Remove(tokFile)
	if err := g.reload(); err == nil {
		t.Error("reload with a missing admin_token_file succeeded")
	}
	check("/metrics", "Bearer s3cret-two", 200)
	_ = path
}
