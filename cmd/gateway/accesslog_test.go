package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rsgate/rsgate/internal/demo"
)

// countingSink counts access lines by status class without keeping them.
type countingSink struct {
	mu      sync.Mutex
	partial []byte
	s5xx    atomic.Int64
	s2xx    atomic.Int64
}

func (c *countingSink) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := append(c.partial, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := buf[:i]
		switch {
		case bytes.Contains(line, []byte(`"status":5`)):
			c.s5xx.Add(1)
		case bytes.Contains(line, []byte(`"status":2`)):
			c.s2xx.Add(1)
		}
		buf = buf[i+1:]
	}
	c.partial = append(c.partial[:0], buf...)
	return len(p), nil
}

func (c *countingSink) Sync() error { return nil }

// Access log completeness under load: 20,000 requests to a failing backend, with the production logger
// (zap's sampler on) as the gateway's log and sample: 0.01, must give exactly 20,000 5xx lines.
func TestAccessLogEvery5xxUnderLoad(t *testing.T) {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sink := &countingSink{}
	old := accessLogSink
	accessLogSink = sink
	defer func() { accessLogSink = old }()

	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
log:
  access_log: {enabled: true, sample: 0.01}
backends:
  demo: {addresses: [%q], connections: 2}
routes:
  - {name: fail, method: POST, path: /api/fail, backend: demo, interaction: request-response, route: fail}
  - {name: echo, method: POST, path: /api/echo, backend: demo, interaction: request-response, route: echo}
`, d.Addr())
	f, cfg, table := loadYAML(t, yaml)
	log, err := newLogger(cfg, "error") // the production logger, sampler included
	if err != nil {
		t.Fatal(err)
	}
	g, err := start(f, cfg, table, log)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, "http://"+g.admin.ln.Addr().String())
	base := "http://" + g.listenAddr()

	const total, workers = 20000, 16
	var next, status500, other atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for next.Add(1) <= total {
				resp, err := hc.Post(base+"/api/fail", "application/json", strings.NewReader(`{}`))
				if err != nil {
					other.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 500 {
					status500.Add(1)
				} else {
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 200; i++ {
		get(t, "POST", base+"/api/echo", "{}")
	}
	if err := g.shutdown(); err != nil {
		t.Fatal(err)
	}
	if status500.Load() != total {
		t.Fatalf("%d answers were 500 (%d other); the test needs %d", status500.Load(), other.Load(), total)
	}
	dropped := g.metrics.GetOrCreateCounter(`rsgate_access_log_dropped_total`).Get()
	if got := sink.s5xx.Load(); got != total || dropped != 0 {
		t.Fatalf("%d of %d 5xx answers logged (%d lines dropped)", got, total, dropped)
	}
	if n := sink.s2xx.Load(); n > 20 {
		t.Errorf("%d of 200 2xx lines logged with sample 0.01", n)
	}
	t.Logf("5xx lines %d of %d, 2xx lines %d of 200", sink.s5xx.Load(), total, sink.s2xx.Load())
}
