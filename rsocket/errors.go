package rsocket

import (
	"errors"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Error is an ERROR frame received from the peer (or one we sent, as reported by Accept when it rejects
// a SETUP). Match it with errors.As(err, &e) where e is a *Error; errors.Is(err, &Error{Code: c}) matches
// any *Error with code c, whatever its message.
type Error struct {
	Code    frame.ErrorCode
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "rsocket: " + e.Code.String()
	}
	return "rsocket: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same code (the message is not compared).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Local conditions. All are errors.Is-able; errors that end a connection wrap ErrClosed together with the
// cause (a *Error for a connection-level ERROR frame from the peer, a transport error, ErrKeepaliveTimeout,
// ...), so errors.Is(err, ErrClosed) holds for every stream failed by a connection end.
var (
	// ErrClosed: the connection is closed (or closing); nothing more can be sent on it.
	ErrClosed = errors.New("rsocket: connection closed")
	// ErrCanceled: the stream was canceled (by the peer's CANCEL, or locally).
	ErrCanceled = errors.New("rsocket: stream canceled")
	// ErrNoLease: the peer requires leases (SETUP L flag) and none is available now. Nothing was sent:
	// another connection may be tried.
	ErrNoLease = errors.New("rsocket: no lease available")
	// ErrTooLarge: a reassembled payload exceeded Options.MaxReassembledSize; the stream was ended.
	ErrTooLarge = errors.New("rsocket: reassembled payload too large")
	// ErrStreamDone: the stream has already terminated in the direction the call needs (for example
	// Send after Complete, or Respond twice).
	ErrStreamDone = errors.New("rsocket: stream already terminated")
	// ErrNoCredit: Respond on a stream or channel without REQUEST_N credit from the peer (use Send, which
	// waits for credit).
	ErrNoCredit = errors.New("rsocket: no credit from the peer")
	// ErrStreamIDsExhausted: every stream id of this side has been used (2^30 of them); open a new
	// connection. Stream ids are never reused.
	ErrStreamIDsExhausted = errors.New("rsocket: stream ids exhausted")
	// ErrKeepaliveTimeout: no frame came from the peer within the maximum lifetime.
	ErrKeepaliveTimeout = errors.New("rsocket: no frame from the peer within the maximum lifetime")
	// ErrSetupTimeout: Accept did not receive a SETUP frame within ServerOptions.SetupTimeout.
	ErrSetupTimeout = errors.New("rsocket: no SETUP frame within the setup timeout")
	// ErrServerClosed is returned by Server.Serve after Server.Close.
	ErrServerClosed = errors.New("rsocket: server closed")
	// ErrProtocol: the peer broke the protocol (malformed frame, unknown frame type without the I flag,
	// ...); we sent ERROR[CONNECTION_ERROR] and closed the connection.
	ErrProtocol = errors.New("rsocket: protocol violation by the peer")
	// ErrRelayMode: Send or Respond on a stream switched to relay mode (Stream.Relay); use Relay.Forward.
	ErrRelayMode = errors.New("rsocket: stream is in relay mode")
	// ErrResumeExpired: a resumable session stayed detached from any transport for longer than its
	// session duration.
	ErrResumeExpired = errors.New("rsocket: resumable session expired while detached")
	// ErrResumeRejected: the peer answered a RESUME with ERROR[REJECTED_RESUME] (wrapped with the
	// *Error), or a position could not be honoured; the session has ended.
	ErrResumeRejected = errors.New("rsocket: resume rejected")
)

// closedError is the error of a closed connection: it matches ErrClosed and its cause.
type closedError struct{ cause error }

func (e *closedError) Error() string {
	if e.cause == nil || e.cause == ErrClosed {
		return ErrClosed.Error()
	}
	return ErrClosed.Error() + ": " + e.cause.Error()
}

func (e *closedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrClosed}
	}
	return []error{ErrClosed, e.cause}
}
