package ingress

import (
	"errors"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// Stalled backends (routes[].stream.idle_timeout). A backend that holds credit and sends nothing leaves the
// client waiting forever (rsocket-go v0.8.12 does this: bench/interop/README.md). The stream writer keeps
// one timer per stream, armed for the whole idle timeout and never reset per item: when it fires, the writer
// compares the time of the last batch it took (one clock read per batch) with now and either re-arms it for
// the time left or ends the stream: CANCEL upstream and a STREAM_IDLE error event to the client.
//
// It only fires while the backend owes items: credit outstanding (granted > received), nothing queued and
// the stream not ended. A slow client never trips it: while the client has not taken the items, the writer
// grants no credit, so none is outstanding once the backend has sent what it was granted, and the clock
// starts again with the batch after which the writer grants more.

// CodeStreamIdle is the code of the in-stream error of a stream ended by stream.idle_timeout.
const CodeStreamIdle = "STREAM_IDLE"

// errStreamIdle is the cause of a stream ended by its idle timeout.
var errStreamIdle = errors.New("ingress: backend sent no item within the stream idle timeout")

// idleTimer starts the stream's idle timer (nil when the route has no idle timeout) and the reference
// time of the first check.
func (sr *streamer) idleTimer() (*time.Timer, <-chan time.Time) {
	d := sr.rt.idleTimeout
	if d <= 0 {
		return nil, nil
	}
	sr.lastAt = time.Now()
	t := time.NewTimer(d)
	return t, t.C
}

// idleLeft is the time until the stream counts as stalled (<= 0: it is). A stream that owes nothing
// (no credit outstanding, items waiting to be written, or ended) is looked at again a whole timeout later.
func (sr *streamer) idleLeft(now time.Time) time.Duration {
	sr.mu.Lock()
	owed := sr.received < sr.granted && len(sr.queue) == 0 && !sr.ended
	sr.mu.Unlock()
	if !owed {
		sr.lastAt = now
		return sr.rt.idleTimeout
	}
	return sr.rt.idleTimeout - now.Sub(sr.lastAt)
}

// idleFailure is the in-stream error of a stalled stream, counted on the route's
// rsgate_stream_idle_timeouts_total.
func (sr *streamer) idleFailure() failure {
	if c := sr.rt.idleCount; c != nil {
		c.Inc()
	}
	return failure{
		status: fasthttp.StatusGatewayTimeout,
		code:   CodeStreamIdle,
		msg:    "the backend sent no item for " + sr.rt.idleTimeout.String() + " with credit outstanding",
	}
}

// compileStream resolves a request-stream route's stall and resumption settings.
func (rt *route) compileStream(idle, resume time.Duration, expired string, set *metrics.Set) {
	rt.idleTimeout = max(idle, 0)
	rt.resumeWindow = max(resume, 0)
	rt.resumeGone = expired == mapping.ResumeExpiredGone
	if set != nil && rt.idleTimeout > 0 {
		rt.idleCount = set.GetOrCreateCounter(`rsgate_stream_idle_timeouts_total{route="` + rt.name + `"}`)
	}
}
