package mapping

import "time"

// Stream keys added for stalled streams and SSE resumption (routes[].stream.idle_timeout,
// stream.resume_window, stream.resume_expired) and their gateway-wide bound (limits.max_parked_streams).

// Values of a route's "stream.resume_expired" key.
const (
	ResumeExpiredNew  = "new"  // a Last-Event-ID naming no parked stream starts a new stream
	ResumeExpiredGone = "gone" // ... is answered 410 Gone (code STREAM_EXPIRED)
)

// Defaults of the stream keys.
const (
	DefaultStreamIdleTimeout   = 60 * time.Second
	DefaultStreamResumeWindow  = 30 * time.Second
	DefaultStreamResumeExpired = ResumeExpiredNew
	DefaultMaxParkedStreams    = 1024
)

// newStreamConfig returns a route's "stream" section with every default.
func newStreamConfig() StreamConfig {
	return StreamConfig{
		Format:        StreamAuto,
		Window:        DefaultStreamWindow,
		IdleTimeout:   Duration(DefaultStreamIdleTimeout),
		ResumeWindow:  Duration(DefaultStreamResumeWindow),
		ResumeExpired: DefaultStreamResumeExpired,
	}
}

// streamKeys validates the stall and resumption keys of a route's stream section (f is "routes[i]").
func (v *validator) streamKeys(f string, r *Route) {
	if r.Stream.IdleTimeout < 0 {
		v.add(f+".stream.idle_timeout", "must not be negative (0 turns it off), got %s", r.Stream.IdleTimeout)
	}
	if r.Stream.ResumeWindow < 0 {
		v.add(f+".stream.resume_window", "must not be negative (0 turns it off), got %s", r.Stream.ResumeWindow)
	}
	v.oneOf(f+".stream.resume_expired", r.Stream.ResumeExpired, ResumeExpiredNew, ResumeExpiredGone)
}
