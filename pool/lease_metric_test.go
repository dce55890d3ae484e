package pool

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/internal/testutil/rstest"
	"github.com/rsgate/rsgate/rsocket"
)

// rsgate_backend_lease_available sums the requests left under the leases of a backend's ready connections;
// a backend without leases has no such series.
func TestLeaseAvailableMetric(t *testing.T) {
	set := metrics.NewSet()
	bk := testBackend("leased", "10.0.0.1:1")
	bk.Lease = true
	bk.Connections = 2
	p := newPool(t, bk, Options{Metrics: set, Dialer: pipeDialer(t, rstest.EchoHandler(), &rsocket.LeaseGrant{TTL: time.Minute, Requests: 5})})
	plain := newPool(t, testBackend("plain", "10.0.0.2:1"), Options{Metrics: set, Dialer: pipeDialer(t, rstest.EchoHandler(), nil)})
	p.Start()
	plain.Start()
	gauge := func() string {
		var buf bytes.Buffer
		set.WritePrometheus(&buf)
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.HasPrefix(line, "rsgate_backend_lease_available{") {
				if !strings.HasPrefix(line, `rsgate_backend_lease_available{backend="leased"} `) {
					t.Fatalf("unexpected series %q", line)
				}
				return strings.TrimPrefix(line, `rsgate_backend_lease_available{backend="leased"} `)
			}
		}
		return "absent"
	}
	testutil.EventuallyWithin(t, 5*time.Second, func() bool { return gauge() == "10" }, "two leases of 5")
	for i := 0; i < 3; i++ {
		if _, err := request(t, p); err != nil {
			t.Fatal(err)
		}
	}
	if got := gauge(); got != "7" {
		t.Fatalf("after 3 requests: lease_available %s, want 7", got)
	}
	_ = p.Close()
	if got := gauge(); got != "absent" {
		t.Fatalf("after the pool closed: %s, want the series gone", got)
	}
}
