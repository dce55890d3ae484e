package pool

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Sentinel errors. Values returned by Pick wrap one of them (match with errors.Is). All of them mean "nothing
// was sent to the backend": the ingress answers 503 with a Retry-After header from RetryAfter, except for
// ErrSetupRefused (502).
var (
	// ErrNoConnection: no connection of the backend is ready (all down, dialing or reconnecting).
	ErrNoConnection = errors.New("pool: no backend connection ready")
	// ErrOverloaded: the backend's max_inflight requests are already outstanding.
	ErrOverloaded = errors.New("pool: backend in-flight limit reached")
	// ErrNoLease: connections are ready but none of them holds an unexpired lease with requests left.
	ErrNoLease = errors.New("pool: no backend connection has a lease")
	// ErrSetupRefused: every connection of the backend was ended by the backend refusing its SETUP
	// (ERROR[INVALID_SETUP], ERROR[UNSUPPORTED_SETUP] or ERROR[REJECTED_SETUP] on stream 0): the backend
	// is up but will not talk to this gateway as configured. Not a retryable error: the ingress answers 502.
	// PickError.Code is the refusal's error code.
	ErrSetupRefused = errors.New("pool: backend refused SETUP")
	// ErrClosed: the pool was closed.
	ErrClosed = errors.New("pool: closed")
	// ErrUnsupportedTransport: New was given a backend whose transport this package does not serve.
	ErrUnsupportedTransport = errors.New("pool: unsupported backend transport")
)

// DefaultRetryAfter is the hint RetryAfter gives when nothing better is known.
const DefaultRetryAfter = time.Second

// PickError is the error Pick returns. Each pool owns one value per kind, so returning it does not allocate;
// its RetryAfter hint is updated in place (it is a hint, read it with RetryAfter right after Pick).
type PickError struct {
	Backend string // backend name
	Err     error  // ErrNoConnection, ErrOverloaded, ErrNoLease, ErrSetupRefused or ErrClosed
	// Code is, for ErrSetupRefused, the backend's refusal (frame.CodeInvalidSetup, CodeUnsupportedSetup or
	// CodeRejectedSetup); 0 otherwise.
	Code  frame.ErrorCode
	msg   string
	retry atomic.Int64 // nanoseconds
}

func newPickError(backend string, kind error) *PickError {
	e := &PickError{Backend: backend, Err: kind, msg: fmt.Sprintf("%v (backend %q)", kind, backend)}
	e.retry.Store(int64(DefaultRetryAfter))
	return e
}

func (e *PickError) Error() string { return e.msg }

// Unwrap returns the sentinel error.
func (e *PickError) Unwrap() error { return e.Err }

// RetryAfter returns the current hint: how long a client should wait before retrying.
func (e *PickError) RetryAfter() time.Duration { return time.Duration(e.retry.Load()) }

func (e *PickError) setRetry(d time.Duration) {
	if d < DefaultRetryAfter {
		d = DefaultRetryAfter
	}
	if time.Duration(e.retry.Load()) != d {
		e.retry.Store(int64(d))
	}
}

// RetryAfter reports how long a client should wait before retrying a request that failed with err, and
// whether err is one of this package's retryable errors (ErrNoConnection, ErrOverloaded, ErrNoLease). For
// ErrNoConnection the hint is the time until the next reconnect attempt (at least DefaultRetryAfter).
func RetryAfter(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var pe *PickError
	if errors.As(err, &pe) {
		if pe.Err == ErrClosed || pe.Err == ErrSetupRefused {
			return 0, false
		}
		return pe.RetryAfter(), true
	}
	if errors.Is(err, ErrNoConnection) || errors.Is(err, ErrOverloaded) || errors.Is(err, ErrNoLease) {
		return DefaultRetryAfter, true
	}
	return 0, false
}

// ConfigError reports a backend configuration this package cannot use.
type ConfigError struct {
	Backend string
	Field   string
	Err     error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("pool: backend %q: %s: %v", e.Backend, e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// newRefusedError is the PickError of a backend that refused SETUP with code.
func newRefusedError(backend string, code frame.ErrorCode) *PickError {
	e := newPickError(backend, ErrSetupRefused)
	e.Code = code
	e.msg = fmt.Sprintf("%v with %v (backend %q)", ErrSetupRefused, code, backend)
	return e
}

// setupRefusal returns the error code when err (a connection's end) is the peer refusing SETUP, else 0.
func setupRefusal(err error) frame.ErrorCode {
	var re *rsocket.Error
	if !errors.As(err, &re) {
		return 0
	}
	switch re.Code {
	case frame.CodeInvalidSetup, frame.CodeUnsupportedSetup, frame.CodeRejectedSetup:
		return re.Code
	}
	return 0
}
