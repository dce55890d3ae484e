package rsocket

import (
	"errors"
	"sync"
	"sync/atomic"
)

// resumeBuffer holds the frames we sent that count for resumption ("Resuming Operation") and that the
// peer has not confirmed yet, back to back as they went out (no length prefix), so that they can be sent
// again after a resume. Positions are byte counts: first is the position of the oldest retained frame,
// pos the position after the newest (our "sent" implied position). The peer's last received position
// (KEEPALIVE, RESUME, RESUME_OK) drops the frames it covers.
//
// It is bounded by limit bytes: Stream.Send waits while it is full (the session's writeQueue asks full),
// so a stream cannot outrun the peer's confirmations; sends that do not wait (request-response, Respond,
// Forward, fire-and-forget) may push it past the limit, and then the oldest frames are dropped: a resume
// from a position before first is then refused (REJECTED_RESUME) instead of losing frames silently.
type resumeBuffer struct {
	mu       sync.Mutex
	data     []byte
	sizes    []uint32
	head     int // index in sizes of the oldest retained frame
	dataHead int // its offset in data
	first    uint64
	pos      uint64
	size     atomic.Int64 // retained bytes (len(data) - dataHead)
	limit    int
}

var errPosition = errors.New("rsocket: resume position not available")

// shrinkAbove: an empty buffer with more capacity than this gives it back at the next keepalive tick
// (idle sessions stay small; busy ones keep their buffer).
const shrinkAbove = 64 << 10

// shrinkIfIdle drops the storage of an empty buffer (keepalive tick).
func (r *resumeBuffer) shrinkIfIdle() {
	if r.size.Load() != 0 {
		return
	}
	r.mu.Lock()
	if r.head == len(r.sizes) && cap(r.data) > shrinkAbove {
		r.data, r.sizes = nil, nil
		r.head, r.dataHead = 0, 0
	}
	r.mu.Unlock()
}

// append records one frame given as its parts. mu must be held.
func (r *resumeBuffer) append(head, md, data []byte) {
	n := len(head) + len(md) + len(data)
	r.data = append(append(append(r.data, head...), md...), data...)
	r.sizes = append(r.sizes, uint32(n))
	r.pos += uint64(n)
	sz := r.size.Add(int64(n))
	for sz > int64(r.limit) && r.head < len(r.sizes)-1 {
		sz = r.dropOldest()
	}
}

// dropOldest forgets the oldest retained frame and returns the retained size. mu must be held.
func (r *resumeBuffer) dropOldest() int64 {
	n := r.sizes[r.head]
	r.head++
	r.dataHead += int(n)
	r.first += uint64(n)
	sz := r.size.Add(-int64(n))
	if r.head == len(r.sizes) {
		r.head, r.dataHead = 0, 0
		r.sizes = r.sizes[:0]
		r.data = r.data[:0]
	} else if r.dataHead > len(r.data)/2 && r.dataHead > 4096 {
		k := copy(r.data, r.data[r.dataHead:])
		r.data = r.data[:k]
		r.dataHead = 0
		m := copy(r.sizes, r.sizes[r.head:])
		r.sizes = r.sizes[:m]
		r.head = 0
	}
	return sz
}

// trim drops the frames the peer confirmed (its last received position p). It reports whether anything
// was dropped, and errPosition when p is beyond what we sent or not at a frame boundary of the retained
// frames.
func (r *resumeBuffer) trim(p uint64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.trimLocked(p)
}

func (r *resumeBuffer) trimLocked(p uint64) (bool, error) {
	if p > r.pos {
		return false, errPosition
	}
	dropped := false
	for r.head < len(r.sizes) && r.first+uint64(r.sizes[r.head]) <= p {
		r.dropOldest()
		dropped = true
	}
	if p > r.first { // inside the oldest retained frame
		return dropped, errPosition
	}
	return dropped, nil
}

// from checks that the peer can continue from p (its last received position) and calls fn for each
// retained frame after p. mu must be held.
func (r *resumeBuffer) from(p uint64, fn func(f []byte) error) error {
	if p < r.first || p > r.pos {
		return errPosition
	}
	if _, err := r.trimLocked(p); err != nil {
		return err
	}
	off := r.dataHead
	for i := r.head; i < len(r.sizes); i++ {
		n := int(r.sizes[i])
		if err := fn(r.data[off : off+n : off+n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}
