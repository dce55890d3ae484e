package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

const cutRoute = `  - name: browser
    path: /rsocket
    backend: demo
    interaction: rsocket
    rsocket:
      allow: ["clock.*"]
      resume: {session_duration: 30s}
`

// clockTicks is a subscriber that records whether the clock's ticks ({"tick":i}) come 0, 1, 2, ...
type clockTicks struct {
	mu        sync.Mutex
	next, bad int
	err       error
}

func (c *clockTicks) OnNext(p rsocket.Payload, _ bool) {
	var item struct{ Tick int }
	_ = json.Unmarshal(p.Data, &item)
	c.mu.Lock()
	if item.Tick == c.next {
		c.next++
	} else {
		c.bad++
	}
	c.mu.Unlock()
}
func (c *clockTicks) OnComplete() { c.OnError(fmt.Errorf("the clock completed")) }
func (c *clockTicks) OnError(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}
func (c *clockTicks) state() (next, bad int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, c.bad, c.err
}

// POST /debug/cut-clients on the admin listener, end to end: behind the token and the Origin check; it cuts
// the WebSocket of a resuming rsocket client, whose clock stream goes on with consecutive ticks, and
// counts the cut in /metrics.
func TestAdminCutClients(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokFile, []byte("cut-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _ := startFromYAML(t, fmt.Sprintf(testConfig, d.Addr(), cutRoute)+"admin_token_file: "+tokFile+"\n")
	defer g.shutdown()
	admin := "http://" + g.admin.ln.Addr().String()
	auth := []string{"Authorization", "Bearer cut-token"}

	var dials atomic.Int32
	dial := func(ctx context.Context) (transport.Conn, error) {
		tc, err := transport.DialWebSocket(ctx, "ws://"+g.ln.Addr().String()+"/rsocket", nil, nil)
		if err == nil {
			dials.Add(1)
		}
		return tc, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsocket.Connect(ctx, tc, rsocket.Options{DataMIME: "application/json",
		KeepaliveInterval: 100 * time.Millisecond, Resume: rsocket.ResumeOptions{Enabled: true, Dial: dial}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md := extension.AppendCompositeEntry(nil, extension.MimeRouting, extension.AppendRouting(nil, "clock.10"))
	ticks := &clockTicks{}
	if _, err := c.RequestStream(rsocket.Payload{Metadata: md}, frame.MaxRequestN, ticks); err != nil {
		t.Fatal(err)
	}
	atLeast := func(n int) func() bool {
		return func() bool { next, _, _ := ticks.state(); return next >= n }
	}
	testutil.Eventually(t, atLeast(5), "clock ticks")

	// Refused: no token, a cross-site POST (even with the token), GET.
	for _, tc := range []struct {
		method string
		hdr    []string
		want   int
	}{
		{"POST", nil, 401},
		{"POST", append([]string{"Origin", "https://evil.example"}, auth...), 403},
		{"POST", append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"GET", auth, 405},
	} {
		if code, _, body := adminDo(t, tc.method, admin+"/debug/cut-clients", "", tc.hdr...); code != tc.want {
			t.Fatalf("%s /debug/cut-clients with %v: %d, want %d (%s)", tc.method, tc.hdr, code, tc.want, body)
		}
	}
	if dials.Load() != 1 {
		t.Fatalf("a refused cut request cut the client (%d dials)", dials.Load())
	}
	if code, _, body := adminDo(t, "POST", admin+"/debug/cut-clients?route=other", "", auth...); code != 200 || !strings.Contains(body, `"cut": 0`) {
		t.Fatalf("cut ?route=other: %d %s", code, body)
	}
	for i := 0; i < 2; i++ {
		code, _, body := adminDo(t, "POST", admin+"/debug/cut-clients", "", auth...)
		if code != 200 || !strings.Contains(body, `"cut": 1`) {
			t.Fatalf("cut %d: %d %s", i+1, code, body)
		}
		testutil.Eventually(t, func() bool { return dials.Load() == int32(i+2) }, "the client to dial again")
		next, _, _ := ticks.state()
		testutil.Eventually(t, atLeast(next+5), "ticks after the cut")
	}
	next, bad, err := ticks.state()
	if bad != 0 || err != nil {
		t.Fatalf("clock across 2 cuts: %d consecutive ticks, %d lost or repeated, err %v", next, bad, err)
	}
	_, _, metrics := adminDo(t, "GET", admin+"/metrics", "", auth...)
	if !strings.Contains(metrics, `rsgate_rsocket_clients_cut_total{route="browser"} 2`) ||
		!strings.Contains(metrics, "# HELP rsgate_rsocket_clients_cut_total /rsocket client connections cut") {
		t.Fatalf("/metrics lacks rsgate_rsocket_clients_cut_total 2 with its help text")
	}
}
