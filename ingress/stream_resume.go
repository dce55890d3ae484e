package ingress

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// SSE resumption (routes[].stream.resume_window, stream.resume_expired, limits.max_parked_streams).
//
// On a route with a resume window, every SSE stream gets a random, unguessable session id, and each event's
// id is "<session>-<seq>" (32 hex digits, '-', the item's sequence number from 1). While the client reads,
// the writer keeps the last items it wrote (the replay ring: the window's worth, more while they fit in
// 64 KiB, at most 1024). When the client goes away, the stream is parked instead of canceled: the HTTP
// request ends (499), the backend stream stays open, and with no writer no new credit is granted, so the
// backend can send at most what it was granted (at most stream.window items) into the queue. An
// EventSource that reconnects within the window sends Last-Event-ID: the new request takes the parked
// stream over, replays the ring after that id, then the queue, then the live stream, granting credit again
// as items are delivered. A reconnect that arrives before the gateway noticed the old connection go takes
// the stream over from it (the old connection is closed, its request ends as if its client went away,
// then the stream is parked and taken).
//
// A stream whose end (complete, or an error event) was written is parked too, without its backend side
// (released at once): the end may not have reached the client. A reconnect replays what the client missed
// and the end again; a reconnect with the id of the last item gets 204 No Content, which tells an
// EventSource to stop reconnecting. Such ended streams give their place to streams whose client went away
// when the store is full.
//
// An id that names no parked stream (unknown, expired, another route or path, or older than the ring) gets
// a new stream, or 410 Gone with code STREAM_EXPIRED when the route says resume_expired: gone. A parked
// stream ends (CANCEL upstream) when its window passes, at Shutdown, or when it is taken with an id it
// cannot honour. limits.max_parked_streams caps parked streams gateway-wide; beyond it a stream whose client
// goes away ends as without resumption. NDJSON has no ids: only SSE streams are resumable.
//
// A stream is bound to the identity that opened it (streamOwner: the verified subject and provider on a
// route with auth, the client certificate subject under mTLS, nothing when anonymous): an id presented by
// another identity is treated exactly as an unknown id (a new stream or 410; the stream it names is left
// alone), so learning another user's event id gives no access to their stream and no hint that it exists.
//
// Ownership: the session state (state, call, parked) is guarded by resumeStore.mu; the ring and the
// sequence numbers belong to the writer while the stream is live and to whoever holds it while parked or
// taken (the park and take transitions under the store lock order the hand-over).

// CodeStreamExpired is the code of the 410 answer to a Last-Event-ID that names no parked stream on a route
// with stream.resume_expired: gone.
const CodeStreamExpired = "STREAM_EXPIRED"

// The replay ring of one stream keeps the last items written: its window's worth, and more while they
// fit in replayBytes of item data; never more than maxReplay.
const (
	maxReplay   = 1024
	replayBytes = 64 << 10
)

// takeoverWait bounds how long a resuming request waits for the stream's previous request to let it go.
const takeoverWait = 2 * time.Second

var strLastEventID = []byte("Last-Event-ID")

// Session states.
const (
	sessionLive    uint8 = iota // a request serves the stream
	sessionParking              // its client went away; the request is being ended
	sessionParked               // no request; waiting for a resume within the window
	sessionClosed               // ended (or taken with an id it could not honour)
)

// resumable is the resumption state of one SSE stream.
type resumable struct {
	id    [16]byte
	hex   [32]byte // id as written in the event ids
	route string
	path  []byte
	owner string // the identity that opened the stream (streamOwner); only it may resume the stream

	// Guarded by resumeStore.mu.
	state    uint8
	call     *callCtx      // the serving request's call while live (a takeover cancels it)
	conn     net.Conn      // the serving request's client connection while live (a takeover closes it)
	left     chan struct{} // closed when the stream stops being live (parked or ended)
	timer    *time.Timer   // the parked stream's expiry
	deadline time.Time     // the route timeout of the stream (zero: none)

	ended  bool // (resumeStore.mu) parked after its end (complete or error) was written; backend released
	window int  // items the ring keeps whatever their size (min(stream.window, maxReplay))

	// Owned by the writer while live, by whoever holds the stream otherwise.
	ring       []*bytebufferpool.ByteBuffer // circular: the last items written, oldest at head; grows to maxReplay
	head, n    int
	bytes      int    // item bytes in the ring
	replayFrom uint64 // a resumed writer first replays the items after this sequence number
}

// keep adds a written batch to the replay ring, dropping the oldest items beyond maxReplay items, or
// beyond replayBytes once the ring holds more than its window.
func (r *resumable) keep(batch []*bytebufferpool.ByteBuffer) {
	for _, bb := range batch {
		if r.n == len(r.ring) {
			if len(r.ring) < maxReplay {
				r.grow()
			} else {
				r.evict()
			}
		}
		r.ring[(r.head+r.n)%len(r.ring)] = bb
		r.n++
		r.bytes += len(bb.B)
		for r.bytes > replayBytes && r.n > max(r.window, 1) {
			r.evict()
		}
	}
}

// grow doubles the ring (from 16 items, up to maxReplay).
func (r *resumable) grow() {
	ring := make([]*bytebufferpool.ByteBuffer, min(max(2*len(r.ring), 16), maxReplay))
	for i := 0; i < r.n; i++ {
		ring[i] = r.ring[(r.head+i)%len(r.ring)]
	}
	r.ring, r.head = ring, 0
}

// evict returns the oldest item to its pool.
func (r *resumable) evict() {
	bb := r.ring[r.head]
	r.ring[r.head] = nil
	r.bytes -= len(bb.B)
	itemPool.Put(bb)
	r.head = (r.head + 1) % len(r.ring)
	r.n--
}

// at returns the i-th oldest item of the ring.
func (r *resumable) at(i int) *bytebufferpool.ByteBuffer { return r.ring[(r.head+i)%len(r.ring)] }

// drop returns the ring's items to their pool.
func (r *resumable) drop() {
	for r.n > 0 {
		r.evict()
	}
	r.head = 0
}

// resumeStore holds the resumable streams of a Server: live ones (so that a reconnect can take one over)
// and parked ones (counted against max).
type resumeStore struct {
	mu       sync.Mutex
	sessions map[[16]byte]*streamer
	parked   int
	max      int
	closed   bool // Shutdown: nothing is parked any more

	gauge                             *metrics.Gauge
	resumed, misses, expired, refused *metrics.Counter
}

func newResumeStore(max int, set *metrics.Set) *resumeStore {
	st := &resumeStore{sessions: map[[16]byte]*streamer{}, max: max}
	if set != nil {
		st.gauge = set.GetOrCreateGauge(`rsgate_stream_parked`, nil)
		st.resumed = set.GetOrCreateCounter(`rsgate_stream_resumed_total`)
		st.misses = set.GetOrCreateCounter(`rsgate_stream_resume_misses_total`)
		st.expired = set.GetOrCreateCounter(`rsgate_stream_parked_expired_total`)
		st.refused = set.GetOrCreateCounter(`rsgate_stream_park_refused_total`)
	}
	return st
}

func inc(c *metrics.Counter) {
	if c != nil {
		c.Inc()
	}
}

// setParked updates the count of parked streams by d (mu held).
func (st *resumeStore) setParked(d int) {
	st.parked += d
	if st.gauge != nil {
		st.gauge.Set(float64(st.parked))
	}
}

// setMax applies a reloaded limits.max_parked_streams (streams parked already stay).
func (st *resumeStore) setMax(max int) {
	st.mu.Lock()
	st.max = max
	st.mu.Unlock()
}

// Parked returns the number of parked streams.
func (st *resumeStore) Parked() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.parked
}

// register makes sr resumable (sets sr.rs): a new session id, served by call c on client connection conn.
// It does nothing when no stream can be parked.
func (st *resumeStore) register(sr *streamer, rt *route, path []byte, owner string, c *callCtx, conn net.Conn) {
	r := &resumable{route: rt.name, path: append([]byte(nil), path...), owner: owner, call: c, conn: conn, left: make(chan struct{}),
		deadline: c.deadline, window: min(int(rt.window), maxReplay)}
	_, _ = rand.Read(r.id[:]) // never fails (crypto/rand)
	hex.Encode(r.hex[:], r.id[:])
	st.mu.Lock()
	if st.closed || st.max <= 0 {
		st.mu.Unlock()
		return
	}
	st.sessions[r.id] = sr
	st.mu.Unlock()
	sr.mu.Lock()
	sr.rs = r
	sr.mu.Unlock()
}

// remove forgets a live stream that ends (its writer finishes it).
func (st *resumeStore) remove(sr *streamer) {
	r := sr.rs
	st.mu.Lock()
	if r.state == sessionLive {
		r.state = sessionClosed
		r.call, r.conn = nil, nil
		delete(st.sessions, r.id)
		close(r.left)
	}
	st.mu.Unlock()
}

// park parks the stream (the writer): after its client went away (cause ErrClientGone), or after its end
// was written (ended; cause nil), since the end may not have reached the client. It reports false when the
// stream cannot be parked (store full or closed): the caller then finishes it. A stream whose client went
// away may take the place of a parked ended one when the store is full.
func (sr *streamer) park(cause error, ended bool) bool {
	st, r := sr.s.resume, sr.rs
	var evicted *streamer
	st.mu.Lock()
	if !st.closed && r.state == sessionLive && st.parked >= st.max && !ended {
		evicted = st.evictEndedLocked()
	}
	if st.closed || r.state != sessionLive || st.parked >= st.max {
		if !st.closed && r.state == sessionLive && !ended {
			inc(st.refused)
		}
		st.mu.Unlock()
		return false
	}
	r.state, r.call, r.conn, r.ended = sessionParking, nil, nil, ended
	st.setParked(1)
	st.mu.Unlock()
	if evicted != nil {
		evicted.release(nil, nil)
	}

	sr.detach(cause) // the request ends (499 when the client went away); the stream stays

	st.mu.Lock()
	if st.closed { // Shutdown ran meanwhile
		st.unparkLocked(r)
		close(r.left)
		st.mu.Unlock()
		sr.release(ErrShutdown, nil)
		return true
	}
	r.state = sessionParked
	wait := sr.rt.resumeWindow
	if !r.deadline.IsZero() && !ended {
		wait = min(wait, max(time.Until(r.deadline), 0))
	}
	r.timer = time.AfterFunc(wait, func() { st.expire(sr) })
	close(r.left)
	st.mu.Unlock()
	return true
}

// parkEnded parks a stream whose end (complete or error) was just written: the backend side is released
// now, the replay ring stays for a client that reconnects because it missed the last items.
func (sr *streamer) parkEnded(endErr error) bool {
	sr.releaseBackend(nil, endErr)
	return sr.park(nil, true)
}

// evictEndedLocked ends one parked stream that had ended, to make room (mu held); nil if there is none.
// The caller releases it after unlocking.
func (st *resumeStore) evictEndedLocked() *streamer {
	for _, sr := range st.sessions {
		if r := sr.rs; r.state == sessionParked && r.ended {
			r.timer.Stop()
			st.unparkLocked(r)
			return sr
		}
	}
	return nil
}

// unparkLocked takes the parked stream of r out of the store for good (mu held).
func (st *resumeStore) unparkLocked(r *resumable) {
	r.state = sessionClosed
	delete(st.sessions, r.id)
	st.setParked(-1)
}

// expire ends a parked stream whose window passed.
func (st *resumeStore) expire(sr *streamer) {
	r := sr.rs
	st.mu.Lock()
	if r.state != sessionParked {
		st.mu.Unlock()
		return // taken meanwhile
	}
	st.unparkLocked(r)
	inc(st.expired)
	st.mu.Unlock()
	sr.release(ErrClientGone, nil)
}

// close ends every parked stream and parks none from now on (Shutdown).
func (st *resumeStore) close() {
	var ended []*streamer
	st.mu.Lock()
	st.closed = true
	for _, sr := range st.sessions {
		if r := sr.rs; r.state == sessionParked {
			r.timer.Stop()
			st.unparkLocked(r)
			ended = append(ended, sr)
		}
	}
	st.mu.Unlock()
	for _, sr := range ended {
		sr.release(ErrShutdown, nil)
	}
}

// take hands the parked stream named by id over to a resuming request (call c) when it belongs to route rt
// and path, was opened by the same identity (owner) and still holds every item after seq. A live stream is
// taken over from its request first. It returns nil when there is no such stream (a stream of another
// identity is such a stream too: left as it is, no takeover, no end, nothing that tells it exists); over
// reports a stream that ended whose every item the client has (seq is its last): it is dropped.
func (st *resumeStore) take(id [16]byte, seq uint64, rt *route, path []byte, owner string, c *callCtx, conn net.Conn) (taken *streamer, over bool) {
	st.mu.Lock()
	sr := st.sessions[id]
	if sr == nil || sr.rs.route != rt.name || !bytes.Equal(sr.rs.path, path) || sr.rs.owner != owner {
		st.mu.Unlock()
		return nil, false
	}
	r := sr.rs
	if r.state == sessionLive || r.state == sessionParking {
		if r.state == sessionLive {
			// The client reconnected: its old connection is gone, even if the gateway has not seen it go
			// (a writer blocked on it would hold the stream until then).
			r.call.cancel(&ErrClientGone)
			if r.conn != nil {
				_ = r.conn.Close()
			}
		}
		left := r.left
		st.mu.Unlock()
		t := time.NewTimer(takeoverWait)
		select {
		case <-left:
		case <-t.C:
		}
		t.Stop()
		st.mu.Lock()
	}
	if r.state != sessionParked {
		st.mu.Unlock()
		return nil, false
	}
	r.timer.Stop() // if it fires anyway, expire finds the stream live and does nothing
	st.setParked(-1)
	oldest := sr.eventID - uint64(r.n) // the ring holds oldest+1 .. eventID
	over = r.ended && seq == sr.eventID
	if over || seq > sr.eventID || seq < oldest {
		// The client has the whole stream; or items after seq are gone (or the id is from the future):
		// the stream cannot continue where the client left off.
		r.state = sessionClosed
		delete(st.sessions, id)
		st.mu.Unlock()
		sr.release(ErrClientGone, nil)
		return nil, over
	}
	r.state, r.call, r.conn, r.left = sessionLive, c, conn, make(chan struct{})
	st.mu.Unlock()
	return sr, false
}

// resumeStream serves a request that carries Last-Event-ID on a resumable route. done is false when the
// request should start a new stream (the id names no parked stream and the route says resume_expired:
// new); otherwise the request was answered: ok reports that the resumed stream owns it (as serveStream's
// result), !ok that it was answered 410.
func (s *Server) resumeStream(ctx *fasthttp.RequestCtx, st *state, rt *route, rq *request, lastID []byte) (done, ok bool) {
	var sr *streamer
	if id, seq, valid := parseEventID(lastID); valid {
		var over bool
		sr, over = s.resume.take(id, seq, rt, ctx.Path(), s.streamOwner(ctx), rq.call, ctx.Conn())
		if over {
			// The stream ended and the client has all of it: 204 tells an EventSource to stop reconnecting.
			inc(s.resume.resumed)
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return true, false
		}
		if sr != nil {
			sr.rs.replayFrom = seq
		}
	}
	if sr == nil {
		inc(s.resume.misses)
		if rt.resumeGone {
			writeJSONError(ctx, fasthttp.StatusGone, "the stream named by Last-Event-ID is unknown or expired", CodeStreamExpired, nil)
			return true, false
		}
		return false, false
	}
	inc(s.resume.resumed)
	c := rq.call
	timeout := time.Duration(0)
	if d := sr.rs.deadline; !d.IsZero() {
		timeout = max(time.Until(d), time.Nanosecond) // past: the route timeout fires at once
	}
	c.start(ctx.Time(), timeout)
	s.calls.add(c)
	rq.upstream, rq.streamID = sr.member, sr.stream.ID()
	sr.rq, sr.st, sr.rt = rq, st, rt
	sr.start, sr.bytes = ctx.Time(), 0
	sr.mu.Lock()
	sr.exit = make(chan struct{})
	sr.mu.Unlock()
	go sr.cancelOnDone(c, c.Done(), sr.exit)
	sr.attach(ctx, c)
	select { // the writer looks at what was queued while parked at once
	case sr.notify <- struct{}{}:
	default:
	}
	return true, true
}

// streamOwner names the identity of a request for binding a resumable stream to it: the verified subject
// and provider when the route has auth, the verified client certificate subject when the edge asks for
// client certificates (mTLS), both when both apply, "" for an anonymous request. A Last-Event-ID presented
// by another identity names no stream for it (take), exactly as an unknown id.
func (s *Server) streamOwner(ctx *fasthttp.RequestCtx) string {
	var owner string
	if id := IdentityOf(ctx); id != nil {
		owner = "auth:" + strconv.Itoa(len(id.Provider)) + ":" + id.Provider + strconv.Itoa(len(id.Subject)) + ":" + id.Subject
	}
	if cert := s.clientSubject(ctx); len(cert) > 0 {
		owner += "mtls:" + strconv.Itoa(len(cert)) + ":" + string(cert) // lengths: no two identities alike
	}
	return owner
}

// replay writes the kept items after rs.replayFrom (a resumed stream) and flushes them.
func (sr *streamer) replay(w *bufio.Writer) error {
	r := sr.rs
	from := r.replayFrom
	r.replayFrom = sr.eventID
	oldest := sr.eventID - uint64(r.n)
	for seq := from + 1; seq <= sr.eventID; seq++ {
		bb := r.at(int(seq - oldest - 1))
		if _, err := sr.writeItems(w, []*bytebufferpool.ByteBuffer{bb}, seq-1, nil); err != nil {
			return err
		}
	}
	return w.Flush()
}

// parseEventID parses "<32 hex digits>-<sequence number>".
func parseEventID(b []byte) (id [16]byte, seq uint64, ok bool) {
	if len(b) < 34 || b[32] != '-' {
		return id, 0, false
	}
	if _, err := hex.Decode(id[:], b[:32]); err != nil {
		return id, 0, false
	}
	seq, err := strconv.ParseUint(string(b[33:]), 10, 64)
	if err != nil {
		return id, 0, false
	}
	return id, seq, true
}
