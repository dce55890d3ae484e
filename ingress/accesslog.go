package ingress

import (
	"io"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

// Access log delivery. An access log line is encoded on the request's goroutine and handed to an
// AsyncWriter, whose own goroutine writes it out: the request never waits for the log's file or pipe. The
// writer's queue is bounded in bytes; a line that does not fit is dropped and counted
// (rsgate_access_log_dropped_total), so a log sink that cannot keep up costs lines, never latency or
// memory. Lines queued together are written with one Write.
//
// The gateway builds the access logger without zap's sampler (log.access_log.sample is the only
// sampling, and only for 2xx/3xx answers; 4xx and 5xx are always logged).

// DefaultAccessLogBuffer is the AsyncWriter queue bound used by the gateway: 8 MiB, some 30,000 lines.
const DefaultAccessLogBuffer = 8 << 20

// maxRetainedLogBuffer: a queue buffer that grew beyond this in a burst is not kept for reuse.
const maxRetainedLogBuffer = 1 << 20

// accessLogBatch bounds one Write of queued lines.
const accessLogBatch = 256 << 10

// AsyncWriter is a bounded, non-blocking io.Writer (and zapcore.WriteSyncer) in front of a slow one.
// Each Write is one line (zap writes one entry per call). It is safe for concurrent use.
type AsyncWriter struct {
	out     io.Writer
	limit   int
	dropped *metrics.Counter // nil: not counted (Dropped still is)

	mu       sync.Mutex
	queue    []byte // lines waiting, in order
	spare    []byte // the other buffer (swapped with queue by the writer)
	writing  bool   // a writer goroutine runs
	drops    uint64
	lastErr  error
	inflight int // bytes taken by the writer and not yet written
}

// NewAsyncWriter returns a writer that queues up to limit bytes for out (limit <= 0: DefaultAccessLogBuffer)
// and counts dropped lines in dropped (may be nil).
func NewAsyncWriter(out io.Writer, limit int, dropped *metrics.Counter) *AsyncWriter {
	if limit <= 0 {
		limit = DefaultAccessLogBuffer
	}
	return &AsyncWriter{out: out, limit: limit, dropped: dropped}
}

// Write queues a copy of p, or drops it when the queue is full. It never blocks on out and never fails.
func (a *AsyncWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	if len(a.queue)+a.inflight+len(p) > a.limit {
		a.drops++
		a.mu.Unlock()
		if a.dropped != nil {
			a.dropped.Inc()
		}
		return len(p), nil
	}
	a.queue = append(a.queue, p...)
	start := !a.writing
	a.writing = true
	a.mu.Unlock()
	if start {
		go a.run()
	}
	return len(p), nil
}

// run writes what is queued until the queue is empty (one goroutine at a time, started by Write).
func (a *AsyncWriter) run() {
	a.mu.Lock()
	for len(a.queue) > 0 {
		full := a.queue
		batch := full
		a.queue = a.spare[:0]
		a.inflight = len(batch)
		a.mu.Unlock()
		for len(batch) > 0 {
			n := min(len(batch), accessLogBatch)
			// keep lines whole within a batch where possible: cut after the last newline
			if n < len(batch) {
				for i := n - 1; i > 0; i-- {
					if batch[i] == '\n' {
						n = i + 1
						break
					}
				}
			}
			if _, err := a.out.Write(batch[:n]); err != nil {
				a.mu.Lock()
				a.lastErr = err
				a.mu.Unlock()
			}
			batch = batch[n:]
		}
		a.mu.Lock()
		a.inflight = 0
		if cap(full) <= maxRetainedLogBuffer { // keep one spare buffer, unless a burst grew it
			a.spare = full[:0]
		} else {
			a.spare = nil
		}
	}
	a.writing = false
	a.mu.Unlock()
}

// Sync waits until everything queued so far is written (at most timeout 5s), then syncs out when it
// can. It implements zapcore.WriteSyncer.
func (a *AsyncWriter) Sync() error {
	deadline := time.Now().Add(5 * time.Second)
	a.mu.Lock()
	for a.writing && time.Now().Before(deadline) {
		// a Sync is rare (exit, tests): poll
		a.mu.Unlock()
		time.Sleep(time.Millisecond)
		a.mu.Lock()
	}
	err := a.lastErr
	a.mu.Unlock()
	if s, ok := a.out.(interface{ Sync() error }); ok {
		if serr := s.Sync(); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// Dropped is the number of lines dropped so far.
func (a *AsyncWriter) Dropped() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.drops
}

// accessLogger is where access log lines go.
func (s *Server) accessLogger() *zap.Logger {
	if s.opts.AccessLog != nil {
		return s.opts.AccessLog
	}
	return s.log
}
