package mapping

import (
	"strings"
	"testing"
	"time"
)

func TestAdmissionDefaultsAndInheritance(t *testing.T) {
	cfg, err := Parse([]byte(`limits:
  admission:
    queue: 50
    queue_timeout: 200ms
backends:
  b: {addresses: ["127.0.0.1:7878"]}
routes:
  - {name: plain, method: GET, path: /a, backend: b, interaction: request-response}
  - name: tuned
    method: GET
    path: /b
    backend: b
    interaction: request-response
    priority: background
    admission: {mode: fixed, max_concurrency: 20}
`), "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Limits.Admission
	if g.Mode != AdmissionAdaptive || g.MaxConcurrency != DefaultMaxConcurrency || g.MinConcurrency != DefaultMinConcurrency ||
		g.Queue != 50 || g.QueueTimeout.D() != 200*time.Millisecond {
		t.Fatalf("limits.admission = %+v", g)
	}
	if a := cfg.Routes[0].Admission; a != g || cfg.Routes[0].Priority != PriorityNormal {
		t.Fatalf("plain route: %+v priority %q, want the limits section and normal", a, cfg.Routes[0].Priority)
	}
	want := Admission{Mode: AdmissionFixed, MaxConcurrency: 20, MinConcurrency: DefaultMinConcurrency, Queue: 50, QueueTimeout: Duration(200 * time.Millisecond)}
	if a := cfg.Routes[1].Admission; a != want || cfg.Routes[1].Priority != PriorityBackground {
		t.Fatalf("tuned route: %+v priority %q, want %+v background", a, cfg.Routes[1].Priority, want)
	}
	d := NewConfig().Limits.Admission
	if d.Mode != "adaptive" || d.MaxConcurrency != 1000 || d.MinConcurrency != 8 || d.Queue != 1000 || d.QueueTimeout.D() != time.Second {
		t.Fatalf("defaults %+v", d)
	}
}

func TestAdmissionErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"limits:\n  admission: {mode: adaptiv}\n" + admissionRoutes(""), `config.yaml:2: limits.admission.mode: invalid value "adaptiv" (did you mean "adaptive"?)`},
		{"limits:\n  admission: {max_concurrency: 0}\n" + admissionRoutes(""), `config.yaml:2: limits.admission.max_concurrency: must be between 1 and`},
		{"limits:\n  admission: {min_concurrency: 2000}\n" + admissionRoutes(""), `config.yaml:2: limits.admission.min_concurrency: must not exceed max_concurrency (1000), got 2000`},
		{"limits:\n  admission: {queue: -1}\n" + admissionRoutes(""), `limits.admission.queue: must be between 0 (no queue)`},
		{admissionRoutes("    timeout: 1s\n    admission: {queue_timeout: 2s}\n"), `config.yaml:10: routes[0].admission.queue_timeout: 2s is longer than the route timeout (1s)`},
		{admissionRoutes("    priority: urgent\n"), `config.yaml:9: routes[0].priority: invalid value "urgent"`},
		{admissionRoutes("    admission: {mode: fixed, max_concurrency: 5, min_concurrency: 6}\n"), `routes[0].admission.min_concurrency: must not exceed max_concurrency (5), got 6`},
	} {
		_, err := Parse([]byte(tc.src), "config.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v\nwant it to contain %q", err, tc.want)
		}
	}
	// A bad limits.admission value is reported once, not again for every route that inherits it.
	_, err := Parse([]byte("limits:\n  admission: {mode: adaptve}\n"+admissionRoutes("")), "config.yaml")
	if err == nil || strings.Count(err.Error(), "adaptve") != 1 {
		t.Errorf("inherited bad mode: %v", err)
	}
	// A route timeout shorter than the inherited queue_timeout is fine: the wait stops at the timeout.
	if _, err := Parse([]byte(admissionRoutes("    timeout: 100ms\n")), "config.yaml"); err != nil {
		t.Fatal(err)
	}
}

func admissionRoutes(extra string) string {
	return `backends:
  b: {addresses: ["127.0.0.1:7878"]}
routes:
  - name: r
    method: GET
    path: /r
    backend: b
    interaction: request-response
` + extra
}

func TestAdmissionGoBuilt(t *testing.T) {
	c := NewConfig()
	c.Limits.Admission = Admission{}
	b := NewBackend("b")
	b.Addresses = []string{"127.0.0.1:1"}
	c.Backends["b"] = b
	r := NewRoute("r", InteractionRequestResponse)
	r.Method, r.Path, r.Backend = "GET", "/r", "b"
	r.Admission.MaxConcurrency, r.Admission.MinConcurrency = 7, 5
	c.Routes = []*Route{r}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Admission.MaxConcurrency != 7 || r.Admission.Mode != AdmissionAdaptive || r.Admission.Queue != 0 || r.Priority != PriorityNormal {
		t.Fatalf("%+v %q", r.Admission, r.Priority)
	}
}
