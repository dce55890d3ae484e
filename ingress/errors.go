package ingress

import (
	"context"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// Error codes of the JSON error bodies ({"error":"<message>","code":"<code>"}) for conditions that are not an
// RSocket ERROR frame. An ERROR frame from the backend is reported with the name of its code
// (APPLICATION_ERROR, REJECTED, CANCELED, INVALID, CONNECTION_ERROR, APPLICATION_CODE_0x301, ...).
const (
	CodeNoRoute          = "NO_ROUTE"           // 404: no route for the path
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED" // 405: the path has routes, not for this method
	CodeBodyTooLarge     = "BODY_TOO_LARGE"     // 413: body over limits.max_body or the route's max_body
	CodeBadRequest       = "BAD_REQUEST"        // 400: the request could not be parsed or encoded
	CodeTimeout          = "TIMEOUT"            // 504: the route timeout fired (the backend got CANCEL)
	CodeNoConnection     = "NO_CONNECTION"      // 503: no ready connection to the backend
	CodeOverloaded       = "OVERLOADED"         // 503: the backend's max_inflight is reached
	CodeNoLease          = "NO_LEASE"           // 503: the backend granted no lease
	CodeShuttingDown     = "SHUTTING_DOWN"      // 503: the gateway is stopping
	CodeConnectionLost   = "CONNECTION_LOST"    // 502: the backend connection ended during the request
	CodeBadGateway       = "BAD_GATEWAY"        // 502: any other backend failure
	CodeNoBackend        = "NO_BACKEND"         // 502: the route's backend has no connection pool
	CodeNotImplemented   = "NOT_IMPLEMENTED"    // 501: interaction not served by this build
	CodeTooLarge         = "RESPONSE_TOO_LARGE" // 502: the backend's answer exceeded the reassembly limit
)

// Local reasons a request's context is canceled (rsocket sends CANCEL upstream for both).
var (
	// ErrRouteTimeout is the cause of a request or stream that ran past its route's timeout.
	ErrRouteTimeout = errors.New("ingress: route timeout")
	// ErrShutdown is the cause of a request or stream canceled because Shutdown's grace period ended.
	ErrShutdown = errors.New("ingress: server shutting down")
	// ErrClientGone is the cause of a stream canceled because the client went away.
	ErrClientGone = errors.New("ingress: client went away")
)

// failure is what the gateway answers for an error: HTTP status, code and message for the JSON body, and a
// Retry-After hint (0: none).
type failure struct {
	status     int
	code       string
	msg        string
	retryAfter time.Duration
}

// classify maps err (from pool.Pick or an rsocket call on route rt) onto the error table of README.md
// ("Errors").
// cause is the request context's own cancellation cause, if any (timeout, shutdown, client gone): it wins,
// because the rsocket error is then only the echo of our own CANCEL.
func classify(err, cause error, rt *route) failure {
	switch {
	case cause == ErrRouteTimeout || (cause == nil && errors.Is(err, context.DeadlineExceeded)):
		return failure{status: fasthttp.StatusGatewayTimeout, code: CodeTimeout, msg: "route timeout after " + rt.timeout.String()}
	case cause == ErrShutdown:
		return failure{status: fasthttp.StatusServiceUnavailable, code: CodeShuttingDown, msg: "gateway shutting down", retryAfter: time.Second}
	case cause == ErrClientGone:
		// Nobody reads the answer; 499 (client closed request) is what the access log shows.
		return failure{status: 499, code: "CLIENT_GONE", msg: "client went away"}
	}
	var re *rsocket.Error
	if errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed) {
		f := failure{code: re.Code.String(), msg: re.Message}
		switch re.Code {
		case frame.CodeApplicationError:
			f.status = fasthttp.StatusInternalServerError
		case frame.CodeRejected:
			f.status, f.retryAfter = fasthttp.StatusServiceUnavailable, time.Second
		case frame.CodeCanceled:
			f.status = fasthttp.StatusServiceUnavailable
		case frame.CodeInvalid:
			f.status = fasthttp.StatusBadRequest
		case frame.CodeConnectionError, frame.CodeConnectionClose, frame.CodeInvalidSetup,
			frame.CodeUnsupportedSetup, frame.CodeRejectedSetup, frame.CodeRejectedResume:
			f.status = fasthttp.StatusBadGateway
		default:
			f.status = fasthttp.StatusInternalServerError // application-defined codes 0x301...
		}
		if st, ok := rt.errorStatus(re); ok {
			f.status = st
		}
		if f.msg == "" {
			f.msg = f.code
		}
		return f
	}
	var pe *pool.PickError
	if errors.As(err, &pe) && pe.Code != 0 { // pool.ErrSetupRefused: the backend is up and refuses us
		return failure{status: fasthttp.StatusBadGateway, code: pe.Code.String(), msg: err.Error()}
	}
	if ra, ok := pool.RetryAfter(err); ok {
		f := failure{status: fasthttp.StatusServiceUnavailable, code: CodeNoConnection, msg: err.Error(), retryAfter: ra}
		switch {
		case errors.Is(err, pool.ErrOverloaded):
			f.code = CodeOverloaded
		case errors.Is(err, pool.ErrNoLease):
			f.code = CodeNoLease
		}
		return f
	}
	switch {
	case errors.Is(err, pool.ErrClosed):
		return failure{status: fasthttp.StatusServiceUnavailable, code: CodeShuttingDown, msg: err.Error(), retryAfter: time.Second}
	case errors.Is(err, rsocket.ErrNoLease):
		return failure{status: fasthttp.StatusServiceUnavailable, code: CodeNoLease, msg: err.Error(), retryAfter: time.Second}
	case errors.Is(err, rsocket.ErrClosed):
		// Connection lost, CONNECTION_ERROR from the backend, SETUP refused: the connection is gone.
		f := failure{status: fasthttp.StatusBadGateway, code: CodeConnectionLost, msg: err.Error()}
		if errors.As(err, &re) {
			f.code = re.Code.String()
		}
		return f
	case errors.Is(err, rsocket.ErrTooLarge):
		return failure{status: fasthttp.StatusBadGateway, code: CodeTooLarge, msg: err.Error()}
	case errors.Is(err, rsocket.ErrCanceled):
		return failure{status: fasthttp.StatusServiceUnavailable, code: frame.CodeCanceled.String(), msg: err.Error()}
	}
	return failure{status: fasthttp.StatusBadGateway, code: CodeBadGateway, msg: err.Error()}
}

// countsAgainstBackend reports whether err says something about the backend's health, for pool.Member.Done:
// an ERROR frame answering the request (APPLICATION_ERROR, INVALID, application codes) is a normal answer.
func countsAgainstBackend(err error) error {
	if err == nil {
		return nil
	}
	var re *rsocket.Error
	if errors.As(err, &re) && !errors.Is(err, rsocket.ErrClosed) {
		switch re.Code {
		case frame.CodeRejected, frame.CodeCanceled:
			return err
		}
		return nil
	}
	return err
}

// writeFailure writes f as the JSON error response. It does not allocate beyond the response buffers.
func writeFailure(ctx *fasthttp.RequestCtx, f failure) {
	if f.retryAfter > 0 {
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		var buf [20]byte
		ctx.Response.Header.SetBytesKV(strRetryAfter, strconv.AppendInt(buf[:0], secs, 10))
	}
	writeJSONError(ctx, f.status, f.msg, f.code, nil)
}

var (
	strRetryAfter      = []byte("Retry-After")
	strContentTypeJSON = []byte("application/json")
)

// writeJSONError writes {"error":msg,"code":code[,"path":path]} with status. The body is built directly in
// the response's body buffer.
func writeJSONError(ctx *fasthttp.RequestCtx, status int, msg, code string, path []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	bb := scratchPool.Get()
	bb.B = appendJSONError(bb.B[:0], msg, code, path)
	bb.B = append(bb.B, '\n')
	ctx.Response.SetBody(bb.B)
	scratchPool.Put(bb)
}

// scratchPool holds buffers for JSON error bodies (copied into the response).
var scratchPool bytebufferpool.Pool

// appendJSONError appends {"error":msg,"code":code} (and "path" when path != nil) to dst.
func appendJSONError(dst []byte, msg, code string, path []byte) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendJSONString(dst, msg)
	if code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendJSONString(dst, code)
	}
	if path != nil {
		dst = append(dst, `,"path":`...)
		dst = appendJSONBytes(dst, path)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONBytes is appendJSONString for a byte slice (not retained).
func appendJSONBytes(dst, b []byte) []byte {
	return appendJSONString(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters escaped, invalid
// UTF-8 replaced by U+FFFD, so the result is always valid JSON.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
