package mapping

import (
	"strconv"
	"time"
)

// Admission modes (the values of "admission.mode").
const (
	AdmissionAdaptive = "adaptive" // the limit follows measured latency (and gateway CPU pressure)
	AdmissionFixed    = "fixed"    // the limit is max_concurrency
	AdmissionOff      = "off"      // no limit and no queue
)

// Route priorities (the values of a route's "priority" key).
const (
	PriorityCritical   = "critical"
	PriorityNormal     = "normal"
	PriorityBackground = "background"
)

// Admission defaults (limits.admission, inherited key by key by every route).
const (
	DefaultAdmissionMode  = AdmissionAdaptive
	DefaultMaxConcurrency = 1000
	DefaultMinConcurrency = 8
	DefaultAdmissionQueue = 1000
	DefaultQueueTimeout   = time.Second
	MaxAdmissionValue     = 1 << 20 // bound of max_concurrency, min_concurrency and queue
)

// Admission is an "admission" section: the concurrency limit of a route's request-response,
// fire-and-forget and http requests (streams and WebSocket sessions are not counted, see README
// "Overload"). Under "limits" it gives the defaults of every route and the settings of the per-backend
// limits; a route's own section overrides them key by key.
type Admission struct {
	// Mode is adaptive | fixed | off. Key "admission.mode", default "adaptive": the limit moves between
	// min_concurrency and max_concurrency with the latency measured against the route's no-load latency,
	// and shrinks when the gateway is short of CPU while the route is saturated.
	Mode string `yaml:"mode"`
	// MaxConcurrency is the largest limit (the limit of mode fixed). Key "admission.max_concurrency",
	// default 1000; 1..1048576.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MinConcurrency is the smallest limit of mode adaptive. Key "admission.min_concurrency", default 8;
	// 1..max_concurrency.
	MinConcurrency int `yaml:"min_concurrency"`
	// Queue is how many requests over the limit may wait for a slot; beyond it they get 503 at once.
	// Key "admission.queue", default 1000; 0 = no queue. Keep it above the client connections a route may
	// see: a full queue answers 503 at once, and clients that retry at once turn that into a storm of
	// answers that cost CPU, where a queued request costs none.
	Queue int `yaml:"queue"`
	// QueueTimeout is the longest a request waits in the queue (never past its route timeout); then it
	// gets 503 with Retry-After. Key "admission.queue_timeout", default 1s; 0 = no queue.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// NewAdmission returns the default admission settings.
func NewAdmission() Admission {
	return Admission{
		Mode:           DefaultAdmissionMode,
		MaxConcurrency: DefaultMaxConcurrency,
		MinConcurrency: DefaultMinConcurrency,
		Queue:          DefaultAdmissionQueue,
		QueueTimeout:   Duration(DefaultQueueTimeout),
	}
}

// resolveAdmission fills the route's admission keys not given (set reports whether the YAML gave one) from
// limits.admission, and the default priority.
func (r *Route) resolveAdmission(c *Config, set func(key string) bool) {
	g, a := &c.Limits.Admission, &r.Admission
	if !set("mode") {
		a.Mode = g.Mode
	}
	if !set("max_concurrency") {
		a.MaxConcurrency = g.MaxConcurrency
	}
	if !set("min_concurrency") {
		a.MinConcurrency = g.MinConcurrency
	}
	if !set("queue") {
		a.Queue = g.Queue
	}
	if !set("queue_timeout") {
		a.QueueTimeout = g.QueueTimeout
	}
	if r.Priority == "" {
		r.Priority = PriorityNormal
	}
}

// resolveAdmissionGo is resolveAdmission for configs built in Go: zero values inherit (a zero limits
// section takes the defaults); queue and queue_timeout 0 inherit only when the whole section is zero.
func (c *Config) resolveAdmissionGo() {
	if c.Limits.Admission == (Admission{}) {
		c.Limits.Admission = NewAdmission()
	}
	for _, r := range c.Routes {
		if r == nil {
			continue
		}
		zero := r.Admission == (Admission{})
		r.resolveAdmission(c, func(key string) bool {
			switch key {
			case "mode":
				return r.Admission.Mode != ""
			case "max_concurrency":
				return r.Admission.MaxConcurrency != 0
			case "min_concurrency":
				return r.Admission.MinConcurrency != 0
			}
			return !zero
		})
	}
}

// admission validates an admission section at field f. timeout is the route timeout (0: none, or the
// limits section). inherited (nil for limits.admission) is the section a route inherits from: a value
// equal to it is reported once, at limits.admission, not again for every route.
func (v *validator) admission(f string, a *Admission, timeout Duration, inherited *Admission) {
	own := func(same bool) bool { return inherited == nil || !same }
	if own(inherited != nil && a.Mode == inherited.Mode) {
		v.oneOf(f+".mode", a.Mode, AdmissionAdaptive, AdmissionFixed, AdmissionOff)
	}
	if own(inherited != nil && a.MaxConcurrency == inherited.MaxConcurrency) && (a.MaxConcurrency < 1 || a.MaxConcurrency > MaxAdmissionValue) {
		v.add(f+".max_concurrency", "must be between 1 and %d, got %d", MaxAdmissionValue, a.MaxConcurrency)
	}
	if a.MinConcurrency < 1 || a.MinConcurrency > MaxAdmissionValue {
		if own(inherited != nil && a.MinConcurrency == inherited.MinConcurrency) {
			v.add(f+".min_concurrency", "must be between 1 and %d, got %d", MaxAdmissionValue, a.MinConcurrency)
		}
	} else if a.MinConcurrency > a.MaxConcurrency && a.MaxConcurrency >= 1 &&
		own(inherited != nil && a.MinConcurrency == inherited.MinConcurrency && a.MaxConcurrency == inherited.MaxConcurrency) {
		v.add(f+".min_concurrency", "must not exceed max_concurrency (%d), got %d", a.MaxConcurrency, a.MinConcurrency)
	}
	if own(inherited != nil && a.Queue == inherited.Queue) && (a.Queue < 0 || a.Queue > MaxAdmissionValue) {
		v.add(f+".queue", "must be between 0 (no queue) and %d, got %d", MaxAdmissionValue, a.Queue)
	}
	if a.QueueTimeout < 0 {
		if !own(inherited != nil && a.QueueTimeout == inherited.QueueTimeout) {
			return
		}
		v.add(f+".queue_timeout", "must not be negative")
	} else if _, explicit := v.c.lines[f+".queue_timeout"]; explicit && timeout > 0 && a.QueueTimeout > timeout {
		v.add(f+".queue_timeout", "%s is longer than the route timeout (%s): a request never waits past its timeout",
			a.QueueTimeout.D(), timeout.D())
	}
}

// overload validates limits.admission and every route's admission and priority.
func (v *validator) overload() {
	v.admission("limits.admission", &v.c.Limits.Admission, 0, nil)
	for i, r := range v.c.Routes {
		if r == nil {
			continue
		}
		f := "routes[" + strconv.Itoa(i) + "]"
		v.admission(f+".admission", &r.Admission, r.Timeout, &v.c.Limits.Admission)
		v.oneOf(f+".priority", r.Priority, PriorityCritical, PriorityNormal, PriorityBackground)
	}
}
