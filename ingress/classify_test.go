package ingress

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/frame"
)

// connClosed builds an error like the rsocket core's for a connection that ended with cause.
type connClosed struct{ cause error }

func (e connClosed) Error() string   { return "closed: " + e.cause.Error() }
func (e connClosed) Unwrap() []error { return []error{rsocket.ErrClosed, e.cause} }

// TestClassify covers every row of the error table, including those the end-to-end tests cannot provoke
// on demand (no lease, pool closed, reassembly limit).
func TestClassify(t *testing.T) {
	rt := &route{cr: &mapping.CompiledRoute{Route: &mapping.Route{Name: "r"}}, timeout: 5 * time.Second}
	rsErr := func(c frame.ErrorCode) error { return fmt.Errorf("call: %w", &rsocket.Error{Code: c, Message: "m"}) }
	for _, tc := range []struct {
		name   string
		err    error
		cause  error
		status int
		code   string
		retry  bool
	}{
		{"application", rsErr(frame.CodeApplicationError), nil, 500, "APPLICATION_ERROR", false},
		{"rejected", rsErr(frame.CodeRejected), nil, 503, "REJECTED", true},
		{"canceled", rsErr(frame.CodeCanceled), nil, 503, "CANCELED", false},
		{"invalid", rsErr(frame.CodeInvalid), nil, 400, "INVALID", false},
		{"app code", rsErr(0x301), nil, 500, "APPLICATION_CODE_0x301", false},
		{"connection error frame", connClosed{&rsocket.Error{Code: frame.CodeConnectionError, Message: "bye"}}, nil, 502, "CONNECTION_ERROR", false},
		{"setup refused", connClosed{&rsocket.Error{Code: frame.CodeRejectedSetup, Message: "no"}}, nil, 502, "REJECTED_SETUP", false},
		{"connection lost", connClosed{errors.New("read: connection reset")}, nil, 502, CodeConnectionLost, false},
		{"plain closed", rsocket.ErrClosed, nil, 502, CodeConnectionLost, false},
		{"no connection", pool.ErrNoConnection, nil, 503, CodeNoConnection, true},
		{"overloaded", pool.ErrOverloaded, nil, 503, CodeOverloaded, true},
		{"no lease (pool)", pool.ErrNoLease, nil, 503, CodeNoLease, true},
		{"no lease (conn)", rsocket.ErrNoLease, nil, 503, CodeNoLease, true},
		{"pool closed", pool.ErrClosed, nil, 503, CodeShuttingDown, true},
		{"too large", rsocket.ErrTooLarge, nil, 502, CodeTooLarge, false},
		{"timeout", context.DeadlineExceeded, ErrRouteTimeout, 504, CodeTimeout, false},
		{"timeout without cause", context.DeadlineExceeded, nil, 504, CodeTimeout, false},
		{"shutdown", context.Canceled, ErrShutdown, 503, CodeShuttingDown, true},
		{"client gone", context.Canceled, ErrClientGone, 499, "CLIENT_GONE", false},
		{"cause wins over the echo of our CANCEL", rsocket.ErrCanceled, ErrRouteTimeout, 504, CodeTimeout, false},
		{"unknown", errors.New("weird"), nil, 502, CodeBadGateway, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(tc.err, tc.cause, rt)
			if f.status != tc.status || f.code != tc.code || (f.retryAfter > 0) != tc.retry || f.msg == "" {
				t.Fatalf("classify(%v, %v) = %+v; want %d %s retry=%v", tc.err, tc.cause, f, tc.status, tc.code, tc.retry)
			}
		})
	}
}

func TestCountsAgainstBackend(t *testing.T) {
	app := &rsocket.Error{Code: frame.CodeApplicationError}
	if countsAgainstBackend(app) != nil || countsAgainstBackend(nil) != nil {
		t.Fatal("an answered ERROR or success counted against the backend")
	}
	for _, err := range []error{&rsocket.Error{Code: frame.CodeRejected}, rsocket.ErrClosed, context.DeadlineExceeded} {
		if countsAgainstBackend(err) == nil {
			t.Fatalf("%v not counted against the backend", err)
		}
	}
}

// TestOverloadedIs503: max_inflight reached while a call hangs.
func TestOverloadedIs503(t *testing.T) {
	sp := newSpecial()
	b := startBackend(t, sp.handler)
	cfg := newConfig(map[string]string{"sp": b.addr}, specialRoutes())
	cfg.Backends["sp"].MaxInflight = 1
	g := startGateway(t, cfg, Options{})
	done := make(chan result, 1)
	go func() { done <- g.do("GET", "/hang", "") }() // held until its 80ms timeout
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 1 }, "the first call")
	r := g.do("POST", "/echo", "{}")
	jsonError(t, r, 503, CodeOverloaded)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	jsonError(t, <-done, 504, CodeTimeout)
}
