package rsocket

import "sync"

// rrCall is one of our request-response requests (and the write notification of a zero-copy
// fire-and-forget). It is pooled: RequestResponse takes one, registers it under a new stream id, queues
// the REQUEST_RESPONSE frame with the caller's slices and waits. Exactly one party takes it out of the call
// table (the reader with the answer or error, teardown with the session's error, or the caller on ctx
// end) and that party alone delivers to it, once.
type rrCall struct {
	id uint32
	notifier
	ev  chan struct{} // msg or err has been delivered
	msg *Message
	err error
}

var rrPool = sync.Pool{New: func() any {
	return &rrCall{notifier: notifier{wr: make(chan struct{}, 1)}, ev: make(chan struct{}, 1)}
}}

func getCall() *rrCall { return rrPool.Get().(*rrCall) }

func (rc *rrCall) recycle() {
	rc.id, rc.msg, rc.err, rc.dropped = 0, nil, nil, false
	rrPool.Put(rc)
}

// deliver hands the answer (or error) to the waiting caller. Only the party that took rc out of the
// table calls it.
func (rc *rrCall) deliver(m *Message, err error) {
	rc.msg, rc.err = m, err
	rc.ev <- struct{}{}
}
