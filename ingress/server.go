package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
)

// Pools finds a backend's connection pool by name; *pool.Group implements it. Get returns nil for a
// backend without a pool (the request is answered 502).
type Pools interface {
	Get(name string) *pool.Pool
}

// Options are the process-wide settings of a Server. Every field is optional.
type Options struct {
	// Logger receives the access log (when log.access_log.enabled) and server events. Default: no logging.
	Logger *zap.Logger
	// AccessLog, when set, receives the access log lines instead of Logger. The gateway gives it an
	// unsampled logger writing through an AsyncWriter (accesslog.go). Default: Logger.
	AccessLog *zap.Logger
	// Metrics is the set the per-route series are registered on (rsgate_http_requests_total,
	// rsgate_http_request_duration_seconds, rsgate_http_inflight_requests, rsgate_stream_items_total, all
	// labelled route="name"; requests that match no route use route="_unmatched"). Default: no metrics.
	Metrics *metrics.Set
	// SSEHeartbeat is the period of the SSE comment line (": ping") written on idle SSE streams, which keeps
	// proxies from closing them and detects clients that went away. Default 15s; negative: never.
	SSEHeartbeat time.Duration
	// StreamErrorWait is how long a request-stream handler waits for the backend's first signal before it
	// sends the 200 and the stream headers: an error that arrives within it is answered with its own HTTP
	// status instead of an in-stream error event. The first item ends the wait at once. Default 50ms;
	// negative: never wait.
	StreamErrorWait time.Duration
	// SlowCallWatch is how long a request-response call may wait for its backend before the gateway starts
	// watching the client connection: a client that goes away then cancels the call (CANCEL upstream)
	// instead of leaving it to the route timeout. Fast calls cost nothing for it. Linux, plain TCP only.
	// Default 1s; negative: never.
	SlowCallWatch time.Duration
	// ReduceMemoryUsage releases the read and write buffers of idle keep-alive connections (fasthttp's
	// ReduceMemoryUsage): less memory with many idle clients, a little more CPU per request. Default false
	// (the gateway sets it from limits.reduce_memory, which defaults to true).
	ReduceMemoryUsage bool
	// RSocketMaxStreams bounds the concurrent streams of one client socket on an rsocket route; requests
	// beyond it get ERROR[REJECTED]. Default DefaultRSocketMaxStreams (256).
	RSocketMaxStreams int
	// RSocketAuthenticate, when set, checks every client SETUP on rsocket routes (see ws_rsocket.go and
	// BearerTokens). Default: every SETUP is accepted.
	RSocketAuthenticate RSocketAuthenticator
	// Fallback, when set, answers requests that match no route instead of the JSON 404 (gateway -demo
	// serves the browser demo page with it). Default: nil.
	Fallback fasthttp.RequestHandler
}

// Defaults of Options.
const (
	DefaultSSEHeartbeat    = 15 * time.Second
	DefaultStreamErrorWait = 50 * time.Millisecond
	DefaultSlowCallWatch   = time.Second
)

// Server is the HTTP ingress. It is safe for concurrent use; see the package documentation for its
// lifetime rules.
type Server struct {
	log   *zap.Logger
	set   *metrics.Set
	pools Pools
	opts  Options

	state  atomic.Pointer[state]
	fs     *fasthttp.Server
	calls  calls
	admOn  atomic.Bool  // the admission controller runs (admission.go)
	resume *resumeStore // parked SSE streams (stream_resume.go)

	conns     *connSet    // open client connections (connset.go)
	closeIdle atomic.Bool // after the grace period: a connection whose response is out is closed

	// Base limits the fasthttp server was built with; a reload cannot change them (logged).
	limits mapping.Limits
	// tlsConfig serves HTTPS when the config has a tls section (certificate loaded by New).
	tlsConfig *tls.Config
	// lingers closes the connections of 413s and parse errors gracefully (limits.go).
	lingers lingerSet
	certs   *tlsCerts // the tls section's files, reloaded (tls_edge.go); nil without TLS
}

// New builds a Server for cfg and its compiled table. pools gives each backend's connection pool (pass
// the *pool.Group). The server does not listen until Serve or ListenAndServe.
func New(cfg *mapping.Config, table *mapping.Table, pools Pools, opts Options) (*Server, error) {
	if pools == nil {
		return nil, fmt.Errorf("%w: nil pools", errConfig)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SSEHeartbeat == 0 {
		opts.SSEHeartbeat = DefaultSSEHeartbeat
	}
	if opts.StreamErrorWait == 0 {
		opts.StreamErrorWait = DefaultStreamErrorWait
	}
	if opts.SlowCallWatch == 0 {
		opts.SlowCallWatch = DefaultSlowCallWatch
	}
	s := &Server{log: opts.Logger, set: opts.Metrics, pools: pools, opts: opts, conns: newConnSet()}
	if opts.Metrics != nil {
		s.lingers.refused = opts.Metrics.GetOrCreateCounter(`rsgate_linger_refused_total`) // limits.go
	}
	st, err := compileState(cfg, table, opts.Metrics)
	if err != nil {
		return nil, err
	}
	if err := s.provisionAuth(st, nil); err != nil { // auth.go
		return nil, err
	}
	s.state.Store(st)
	s.limits = cfg.Limits
	s.resume = newResumeStore(cfg.Limits.MaxParkedStreams, opts.Metrics)
	if cfg.TLS != nil {
		// reloaded on Update and when the files change; client certificates (tls_edge.go)
		certs, err := newTLSCerts(cfg.TLS, s.log)
		if err != nil {
			return nil, err
		}
		s.certs, s.tlsConfig = certs, certs.serverConfig()
	}
	s.calls.watchAfter = max(opts.SlowCallWatch, 0)
	headerSize := cfg.Limits.MaxHeaderSize
	if headerSize <= 0 {
		headerSize = mapping.DefaultMaxHeaderSize
	}
	s.fs = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleParseError,
		ExpectHandler:      s.expectContinue, // limits.go: 413 without "100 Continue"
		HeaderReceived:     s.headerReceived,
		ConnState:          s.connState,
		Name:               "rsgate",
		ReadTimeout:        cfg.Limits.ReadTimeout.D(),
		WriteTimeout:       cfg.Limits.WriteTimeout.D(),
		IdleTimeout:        cfg.Limits.IdleTimeout.D(),
		Concurrency:        cfg.Limits.MaxConnections,
		ReadBufferSize:     headerSize, // fasthttp: the request line and headers must fit the read buffer
		MaxRequestBodySize: st.maxBody,
		StreamRequestBody:  false,
		ReduceMemoryUsage:  opts.ReduceMemoryUsage,
		// WebSocket sessions own their upgraded sockets (ws_channel.go, ws_rsocket.go close them): the
		// upgrade handler returns as soon as the session runs on its own goroutines, so the request
		// context (and with ReduceMemoryUsage the read buffer) goes back to fasthttp's pools.
		KeepHijackedConns:    true,
		NoDefaultContentType: true,
		// The clock is read when the handler first asks for ctx.Time() (the handler's start), once per
		// request; clock reads are slow on some virtual machines.
		LazyRequestTime: true,
		CloseOnShutdown: true,
		Logger:          fasthttpLogger{opts.Logger},
	}
	return s, nil
}

// Serve serves HTTP on ln until Shutdown (then it returns nil) or a listener error. With a tls section in
// the configuration it serves HTTPS (and WSS) on ln.
func (s *Server) Serve(ln net.Listener) error {
	if s.tlsConfig != nil {
		ln = certListener{tls.NewListener(ln, s.tlsConfig)} // client certificate identity per connection (tls_principal.go)
	} else {
		// raw reads and writes; with ReduceMemoryUsage one read per request (leanconn_unix.go)
		ln = leanListener{Listener: ln, yields: new(atomic.Int32)}
	}
	if stop := s.startAdmission(); stop != nil { // admission.go
		defer stop()
	}
	// accept errors retried, limits.max_connections and max_connections_per_ip (listener.go)
	return s.fs.Serve(newEdgeListener(ln, "ingress", s.log, s.set, s.limits.MaxConnections, s.limits.MaxConnectionsPerIP))
}

// leanListener hands out its plain TCP connections as leanConns.
type leanListener struct {
	net.Listener
	yields *atomic.Int32 // shared by its connections (leanConn.Read)
}

func (l leanListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newLeanConn(c, l.yields), nil
}

// ListenAndServe listens on the TCP address addr and serves it (see Serve).
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// forceCloseWait bounds how long Shutdown waits, after canceling what was left, for handlers to write
// their answers (and stream clients to read their final error event) before it closes the remaining client
// connections.
const forceCloseWait = time.Second

// Shutdown stops accepting connections and waits until in-flight requests and streams are done or ctx
// ends; parked SSE streams (stream_resume.go) end at once. Then it cancels what is still running (the
// backend gets CANCEL, request-response clients 503, stream clients a SHUTTING_DOWN error event after at
// most the item being written), waits until those answers are written out or forceCloseWait passes, and
// closes the remaining client connections. It returns ctx's error if the grace period ended with work in
// flight, else nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.resume.close()
	s.closeWebSockets()                    // hijacked connections are invisible to fasthttp's Shutdown (ws_common.go)
	defer releaseAuth(s.state.Load(), nil) // stop the JWK Set refreshes
	err := s.fs.ShutdownWithContext(ctx)
	if err == nil {
		return nil
	}
	s.closeIdle.Store(true)
	s.calls.killAll()
	// Wait for the answers to reach the clients, not only for the handlers: a stream's error event is
	// written out after its writer returned, and fasthttp closes each connection once its response is out.
	deadline := time.Now().Add(forceCloseWait)
	for (s.calls.len() > 0 || s.openConns() > 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.conns.closeAll()
	// fasthttp leaves the listener closed; the Server is not reused.
	return err
}

// openConns is the number of client connections fasthttp has not closed yet (hijacked ones excluded).
func (s *Server) openConns() int {
	return s.conns.len()
}

// Update swaps in a new configuration and route table. Requests already running finish with the old ones.
// Listener settings (limits.max_header_size, timeouts, max_connections, reduce_memory) are fixed when the
// Server is built: changes to them are logged and need a restart; limits.max_body and route max_body
// changes apply.
func (s *Server) Update(cfg *mapping.Config, table *mapping.Table) error {
	st, err := compileState(cfg, table, s.set)
	if err != nil {
		return err
	}
	if err := s.updateTLS(cfg); err != nil { // certificate files read again (tls_edge.go)
		return err
	}
	st.compileAdmission(cfg, s.set, s.state.Load()) // keep the limiters (learned limits) of unchanged routes
	l := cfg.Limits
	l.MaxBody = s.limits.MaxBody
	l.Admission = s.limits.Admission                 // applies at once
	l.MaxParkedStreams = s.limits.MaxParkedStreams   // applies at once
	l.StreamIdleTimeout = s.limits.StreamIdleTimeout // a route default: applies to new streams
	s.resume.setMax(cfg.Limits.MaxParkedStreams)
	if l != s.limits {
		s.log.Warn("listener limits changed; they apply after a restart",
			zap.Int("max_header_size", cfg.Limits.MaxHeaderSize),
			zap.Stringer("read_timeout", cfg.Limits.ReadTimeout),
			zap.Stringer("write_timeout", cfg.Limits.WriteTimeout),
			zap.Stringer("idle_timeout", cfg.Limits.IdleTimeout),
			zap.Int("max_connections", cfg.Limits.MaxConnections),
			zap.Bool("reduce_memory", cfg.Limits.ReduceMemory))
	}
	old := s.state.Load()
	if err := s.provisionAuth(st, old); err != nil { // auth.go: providers kept when unchanged
		return err
	}
	s.state.Store(st)
	releaseAuth(old, st)
	return nil
}

// InFlight returns the number of backend calls and streams in progress.
func (s *Server) InFlight() int { return s.calls.len() }

// headerReceived applies the current configuration's body limit (reload-safe; fasthttp's own field is
// fixed at start).
func (s *Server) headerReceived(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{MaxRequestBodySize: s.state.Load().maxBody}
}

// handleParseError answers requests fasthttp could not read, in JSON.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var (
		status = fasthttp.StatusBadRequest
		code   = CodeBadRequest
		msg    = "cannot parse the request"
	)
	var sm *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, msg = fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body over the size limit"
	case errors.As(err, &sm):
		status, code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge, "request headers over the size limit"
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			status, code, msg = fasthttp.StatusRequestTimeout, CodeTimeout, "timeout reading the request"
		}
	}
	writeJSONError(ctx, status, msg, code, nil)
	st := s.state.Load()
	m := st.unmatched
	switch status {
	case fasthttp.StatusRequestEntityTooLarge:
		m, _ = st.routeFor(ctx) // the header was read: count under the route (limits.go)
	case fasthttp.StatusRequestHeaderFieldsTooLarge:
		m = st.routeForLine(err) // the request line from the error's quote of the buffer (limits.go)
	}
	m.count(status, 0)
	s.lingers.add(ctx.Conn()) // unread request bytes: close gracefully (limits.go)
}

func (s *Server) connState(c net.Conn, cs fasthttp.ConnState) {
	switch cs {
	case fasthttp.StateNew:
		s.conns.add(c)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.conns.remove(c)
		s.lingers.closed(c)
	case fasthttp.StateIdle:
		// fasthttp keeps serving keep-alive connections once ShutdownWithContext has given up; after the
		// grace period a connection whose answer is out is done.
		if s.closeIdle.Load() {
			s.conns.remove(c)
			_ = c.Close()
		}
	}
}

// fasthttpLogger sends fasthttp's own messages to zap at debug level.
type fasthttpLogger struct{ log *zap.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "fasthttp"); ce != nil {
		ce.Write(zap.String("msg", fmt.Sprintf(format, args...)))
	}
}

// poolMember is the pool slot a request holds between Pick and Done.
type poolMember = pool.Member
