package mapping

import "time"

// Defaults of a backend's "resume" section and of a route's "rsocket.resume" section.
const (
	DefaultResumeSessionDuration       = 30 * time.Second
	DefaultResumeBuffer                = 1 << 20
	DefaultClientResumeSessionDuration = 2 * time.Minute
)

// BackendResume is a backend's "resume" section: RSocket resumption of the gateway's connections to it.
// With it on, SETUP carries the R flag and a resume token; a connection cut by the network is re-dialled
// to the same address and resumed (RESUME / RESUME_OK), so requests and streams in flight continue
// without loss or duplication. When the backend refuses the resume, the streams on that connection fail
// and new requests use a new connection. The backend must support resumption.
type BackendResume struct {
	// Enabled turns resumption on. Key "resume.enabled", default false. Not for transport http.
	Enabled bool `yaml:"enabled"`
	// SessionDuration is how long a cut connection's session is kept (and re-dialled) before its
	// streams fail; the backend must keep it at least as long. Key "resume.session_duration", default
	// 30s; > 0.
	SessionDuration Duration `yaml:"session_duration"`
	// Buffer bounds the bytes of sent frames kept per connection until the backend confirms them (for
	// retransmission after a cut). A stream sending faster than the backend confirms waits. Key
	// "resume.buffer", default 1MiB; 4KiB..1GiB.
	Buffer int `yaml:"buffer" unit:"bytes"`
}

// NewBackendResume returns the defaults.
func NewBackendResume() BackendResume {
	return BackendResume{SessionDuration: Duration(DefaultResumeSessionDuration), Buffer: DefaultResumeBuffer}
}

func (v *validator) backendResume(f string, b *Backend) {
	r := &b.Resume
	if r.Enabled && b.Transport == TransportHTTP {
		v.add(f+".enabled", "resumption is an RSocket feature; not for transport http")
	}
	if r.SessionDuration <= 0 {
		v.add(f+".session_duration", "must be greater than 0")
	}
	if r.Buffer < 4<<10 || r.Buffer > 1<<30 {
		v.add(f+".buffer", "must be between 4KiB and 1GiB, got %d bytes", r.Buffer)
	}
}

// RSocketResume is an rsocket route's "rsocket.resume" section: clients (rsocket-js 1.0 with its resume
// option) may resume their session after the WebSocket was cut. The gateway keeps a cut client's session,
// and its upstream streams, for session_duration; a client that reconnects and sends RESUME with its
// token continues where it left off. Present = on.
type RSocketResume struct {
	// SessionDuration is how long a cut client session is kept. Key "rsocket.resume.session_duration",
	// default 2m; > 0.
	SessionDuration Duration `yaml:"session_duration"`
	// Buffer bounds the bytes sent to the client and not yet confirmed by it, per session. Key
	// "rsocket.resume.buffer", default 1MiB; 4KiB..1GiB.
	Buffer int `yaml:"buffer" unit:"bytes"`
}

// Defaulted returns r with the defaults for keys left out (0).
func (r RSocketResume) Defaulted() RSocketResume {
	if r.SessionDuration == 0 {
		r.SessionDuration = Duration(DefaultClientResumeSessionDuration)
	}
	if r.Buffer == 0 {
		r.Buffer = DefaultResumeBuffer
	}
	return r
}

func (v *validator) rsocketResume(f string, r *RSocketResume) {
	if r == nil {
		return
	}
	d := r.Defaulted()
	if d.SessionDuration < 0 {
		v.add(f+".session_duration", "must be greater than 0")
	}
	if d.Buffer < 4<<10 || d.Buffer > 1<<30 {
		v.add(f+".buffer", "must be between 4KiB and 1GiB, got %d bytes", d.Buffer)
	}
}
