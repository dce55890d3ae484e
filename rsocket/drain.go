package rsocket

import (
	"context"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Graceful close. ERROR[CONNECTION_CLOSE]: "The connection is being terminated. Sender or Receiver of
// this frame MUST wait for outstanding streams to terminate before closing the connection. New requests
// MAY not be accepted." Both directions implement it: Drain sends it and waits; receiving it starts the
// same drain, and the connection closes itself once the last stream has ended. While draining, new local
// requests fail with an error matching ErrClosed (and the CONNECTION_CLOSE *Error), new requests from the
// peer are answered with ERROR[REJECTED] (fire-and-forget: dropped), and LeaseAvailable reports false.

// Draining reports whether the connection is draining (Drain was called or the peer sent
// CONNECTION_CLOSE) or closed: no new requests can be sent on it.
func (c *Conn) Draining() bool {
	return c.loadState() != stateOpen
}

// Drain closes the connection gracefully: it sends ERROR[CONNECTION_CLOSE] with msg, refuses new streams
// in both directions, waits until every open stream has ended or ctx is done, then closes
// the connection (streams still open then fail with ErrClosed). It returns ctx's error when ctx ended
// the wait, else nil; Err tells how the connection ended (the peer may close first once it has drained
// too).
func (c *Conn) Drain(ctx context.Context, msg string) error {
	done := c.startDrain(&Error{Code: frame.CodeConnectionClose, Message: msg}, false)
	if err := c.sendError(0, frame.CodeConnectionClose, msg); err != nil {
		<-c.done
		return c.Err()
	}
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// CONNECTION_CLOSE is out already: close without a second ERROR frame.
	c.shutdown(c.drainCause(), nil)
	if !c.inReader.Load() {
		<-c.done
	}
	return err
}

// startDrain enters the draining state (once; later calls keep the first cause) and returns the channel
// closed when no stream is left. peer: the peer asked, so the connection closes itself when drained.
func (c *Conn) startDrain(cause *Error, peer bool) <-chan struct{} {
	c.smu.Lock()
	if c.drainErr == nil {
		c.drainErr = &closedError{cause: cause}
		c.drainDone = make(chan struct{})
		if c.loadState() == stateOpen {
			c.state.Store(int32(stateDraining))
		} else {
			c.closeDrainLocked() // closed already: nothing to wait for
		}
	}
	if peer {
		c.drainPeer = true
	}
	done := c.drainDone
	drained := c.drainedLocked()
	c.smu.Unlock()
	if drained {
		c.onDrained()
	}
	return done
}

func (c *Conn) drainCause() error {
	c.smu.Lock()
	defer c.smu.Unlock()
	if ce, ok := c.drainErr.(*closedError); ok {
		return ce.cause
	}
	return ErrClosed
}

// drainedLocked reports, once, that a draining connection has no stream left (closing drainDone).
// smu must be held.
func (c *Conn) drainedLocked() bool {
	if c.drainErr == nil || c.drainClosed || len(c.streams) > 0 || len(c.calls) > 0 {
		return false
	}
	c.drainClosed = true
	close(c.drainDone)
	return true
}

// closeDrainLocked releases a Drain waiting for streams when the session closes. smu must be held.
func (c *Conn) closeDrainLocked() {
	if c.drainErr != nil && !c.drainClosed {
		c.drainClosed = true
		close(c.drainDone)
	}
}

// onDrained closes a connection the peer asked to close, once it has no stream left.
func (c *Conn) onDrained() {
	c.smu.Lock()
	peer := c.drainPeer
	c.smu.Unlock()
	if peer {
		c.shutdown(c.drainCause(), nil)
	}
}
