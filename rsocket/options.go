package rsocket

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// Defaults of Options and ServerOptions.
const (
	DefaultKeepaliveInterval  = 20 * time.Second
	DefaultMaxLifetime        = 90 * time.Second
	DefaultMetadataMIME       = "message/x.rsocket.composite-metadata.v0"
	DefaultDataMIME           = "application/octet-stream"
	DefaultMaxReassembledSize = 16 << 20
	DefaultSetupTimeout       = 10 * time.Second
	// DefaultMaxQueuedBytes bounds the bytes copied into the write queue by Stream.Send before Send
	// waits for the writer.
	DefaultMaxQueuedBytes = 1 << 20
)

// SetupInfo is the content of the SETUP frame that opened a connection.
type SetupInfo struct {
	Major, Minor           uint16
	Keepalive, MaxLifetime time.Duration
	MetadataMIME, DataMIME string
	Lease, Resume          bool
	Token                  []byte
	Payload                Payload // a copy, owned by the SetupInfo
}

// Options configures the client side of a connection (Connect).
type Options struct {
	// KeepaliveInterval is the period of KEEPALIVE frames (sent in SETUP). Default 20s; the SETUP field
	// has millisecond resolution.
	KeepaliveInterval time.Duration
	// MaxLifetime: the connection is closed with ErrKeepaliveTimeout after this long without any frame
	// from the peer (sent in SETUP). Default 90s.
	MaxLifetime time.Duration
	// MetadataMIME and DataMIME go into SETUP. Defaults "message/x.rsocket.composite-metadata.v0" and
	// "application/octet-stream". At most 255 ASCII bytes each.
	MetadataMIME, DataMIME string
	// SetupPayload is sent in SETUP (copied by Connect).
	SetupPayload Payload
	// Lease sets the L flag: requests fail with ErrNoLease until the server sent a LEASE, and requests
	// from the server are answered with ERROR[REJECTED] beyond the leases issued with SendLease.
	Lease bool
	// MTU: outgoing REQUEST_*/PAYLOAD frames longer than MTU bytes are fragmented. 0 = never; values
	// below 64 are invalid.
	MTU int
	// MaxReassembledSize bounds a reassembled (fragmented) payload, metadata + data. Default 16 MiB.
	// A larger inbound payload ends its stream: CANCEL (our request) or ERROR[REJECTED] (their request).
	// All reassemblies in progress on a connection together are bounded by 4 x MaxReassembledSize.
	MaxReassembledSize int
	// MaxQueuedBytes bounds the bytes Stream.Send may have waiting in the write queue; Send blocks
	// beyond it. Default 1 MiB.
	MaxQueuedBytes int
	// Resume enables resumption (resume.go): SETUP carries the R flag and a token, and a lost transport
	// is replaced through Resume.Dial without ending the session.
	Resume ResumeOptions
	// Handler serves requests from the peer; nil answers them with ERROR[REJECTED].
	Handler Handler
	// Logger receives protocol-level diagnostics; nil = no logging.
	Logger *zap.Logger
	// Now is the clock lease expiry is read from (tests). Default time.Now.
	Now func() time.Time
}

// LeaseGrant is the lease a server issues right after accepting a SETUP with the L flag (the spec
// requires one). Renew it later with Conn.SendLease.
type LeaseGrant struct {
	TTL      time.Duration
	Requests uint32
	Metadata []byte
}

// ServerOptions configures the server side of a connection (Accept, Server).
type ServerOptions struct {
	// SetupTimeout bounds the wait for the SETUP frame. Default 10s.
	SetupTimeout time.Duration
	// MTU, MaxReassembledSize, MaxQueuedBytes: as in Options.
	MTU, MaxReassembledSize, MaxQueuedBytes int
	Logger                                  *zap.Logger
	// Lease, when non-nil, is issued right after a SETUP with the L flag is accepted. When nil and the
	// client set L, the Acceptor (or later code) must call SendLease, or the client cannot request.
	Lease *LeaseGrant
	// Resume enables resumption: SETUP with R is accepted and its session kept in Sessions for
	// Resume.SessionDuration after its transport is lost; RESUME continues it. Without it, SETUP with R
	// is refused with REJECTED_SETUP and RESUME with REJECTED_RESUME.
	Resume ResumeOptions
	// Sessions holds the resumable sessions; it must be shared by every Accept of one server. Server
	// creates it when nil; callers of Accept with Resume.Enabled must set it.
	Sessions *Sessions
	// Now is the clock lease expiry is read from (tests). Default time.Now.
	Now func() time.Time
}

// config is the normalized, side-independent configuration of a Conn.
type config struct {
	keepalive, lifetime time.Duration
	mtu                 int
	maxReassembled      int
	maxQueued           int
	log                 *zap.Logger
	now                 func() time.Time // lease expiry
}

func normalize(mtu, maxReassembled, maxQueued int, log *zap.Logger, now func() time.Time) (config, error) {
	if mtu != 0 && mtu < frame.MinMTU {
		return config{}, fmt.Errorf("rsocket: MTU %d is below the minimum of %d bytes", mtu, frame.MinMTU)
	}
	if mtu > frame.MaxFrameLen {
		mtu = frame.MaxFrameLen
	}
	if maxReassembled <= 0 {
		maxReassembled = DefaultMaxReassembledSize
	}
	if maxQueued <= 0 {
		maxQueued = DefaultMaxQueuedBytes
	}
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	return config{mtu: mtu, maxReassembled: maxReassembled, maxQueued: maxQueued, log: log, now: now}, nil
}

// durationMillis converts d to whole milliseconds for a 31-bit SETUP field (at least 1).
func durationMillis(d time.Duration) uint32 {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	if ms > frame.MaxRequestN {
		ms = frame.MaxRequestN
	}
	return uint32(ms)
}
