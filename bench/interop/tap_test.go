package interop

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// tapEvent is one frame seen by a tap, oriented by request direction (the client always requests here).
type tapEvent struct {
	at          time.Duration
	toResponder bool
	typ         frame.Type
	stream      uint32
	flags       frame.Flags
	n           uint32 // REQUEST_N's N, REQUEST_STREAM/CHANNEL's initial N, ERROR's code
	size        int
	msg         string // ERROR message (truncated)
}

func (e tapEvent) String() string {
	dir := "->responder"
	if !e.toResponder {
		dir = "->requester"
	}
	s := fmt.Sprintf("%8.3fms %s %s stream=%d flags=%#03x len=%d", float64(e.at.Microseconds())/1000, dir, e.typ, e.stream, uint16(e.flags), e.size)
	switch e.typ {
	case frame.TypeRequestN, frame.TypeRequestStream, frame.TypeRequestChannel:
		s += fmt.Sprintf(" n=%d", e.n)
	case frame.TypeError:
		s += fmt.Sprintf(" code=%s msg=%q", frame.ErrorCode(e.n), e.msg)
	}
	return s
}

// tap wraps one of our transport.Conn (client or server side) and records a summary of every frame
// passing through it, so that tests can make wire-level assertions against a peer we did not write.
type tap struct {
	transport.Conn
	atResponder bool // the tapped conn is the responder's (server's) end
	start       time.Time

	mu  sync.Mutex
	log []tapEvent
}

func newTap(c transport.Conn, atResponder bool) *tap {
	return &tap{Conn: c, atResponder: atResponder, start: time.Now()}
}

func (t *tap) record(b []byte, size int, inbound bool) {
	if len(b) < frame.HeaderLen {
		return
	}
	e := tapEvent{
		at:          time.Since(t.start),
		toResponder: inbound == t.atResponder,
		stream:      binary.BigEndian.Uint32(b) & 0x7FFFFFFF,
		typ:         frame.Type(b[4] >> 2),
		flags:       frame.Flags(binary.BigEndian.Uint16(b[4:]) & 0x3FF),
		size:        size,
	}
	switch e.typ {
	case frame.TypeRequestN, frame.TypeRequestStream, frame.TypeRequestChannel, frame.TypeError:
		if len(b) >= frame.HeaderLen+4 {
			e.n = binary.BigEndian.Uint32(b[frame.HeaderLen:])
			if e.typ != frame.TypeError {
				e.n &= 0x7FFFFFFF
			}
		}
		if e.typ == frame.TypeError {
			m := b[frame.HeaderLen+4:]
			if len(m) > 200 {
				m = m[:200]
			}
			e.msg = string(m)
		}
	}
	t.mu.Lock()
	t.log = append(t.log, e)
	t.mu.Unlock()
}

func (t *tap) ReadFrame() ([]byte, error) {
	b, err := t.Conn.ReadFrame()
	if err == nil {
		t.record(b, len(b), true)
	}
	return b, err
}

func (t *tap) WriteFrame(head, metadata, data []byte) error {
	// The header and the fixed fields we decode are in the first 10 bytes, usually all in head.
	var buf [frame.HeaderLen + 4]byte
	n := copy(buf[:], head)
	n += copy(buf[n:], metadata)
	n += copy(buf[n:], data)
	size := len(head) + len(metadata) + len(data)
	b := buf[:n]
	if frame.Type(buf[4]>>2) == frame.TypeError {
		b = append(append(append([]byte{}, head...), metadata...), data...)
	}
	t.record(b, size, false)
	return t.Conn.WriteFrame(head, metadata, data)
}

func (t *tap) events() []tapEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]tapEvent(nil), t.log...)
}

// dump renders the last max events (all stream-0 KEEPALIVEs omitted).
func (t *tap) dump(max int) string {
	ev := t.events()
	var sb strings.Builder
	var kept []tapEvent
	for _, e := range ev {
		if e.typ != frame.TypeKeepalive {
			kept = append(kept, e)
		}
	}
	if len(kept) > max {
		fmt.Fprintf(&sb, "... %d earlier frames\n", len(kept)-max)
		kept = kept[len(kept)-max:]
	}
	for _, e := range kept {
		sb.WriteString(e.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// firstStream returns the stream id of the first frame of type typ.
func firstStream(ev []tapEvent, typ frame.Type) (uint32, bool) {
	for _, e := range ev {
		if e.typ == typ {
			return e.stream, true
		}
	}
	return 0, false
}

// checkOneAtATime verifies, frame by frame, the back-pressure contract of a request(1)-at-a-time stream:
// initial N = 1, every REQUEST_N = 1, the responder never delivers beyond the granted credit, and the
// responder never holds more than one unused credit.
// On a responder-side tap the counts are exact; on a requester-side tap, granted-delivered bounds the
// responder's outstanding credit from above, so the check is still sound.
func checkOneAtATime(ev []tapEvent, stream uint32) error {
	var granted, delivered uint64
	fragmenting := false
	for i, e := range ev {
		if e.stream != stream {
			continue
		}
		switch {
		case e.toResponder && e.typ == frame.TypeRequestStream:
			if e.n != 1 {
				return fmt.Errorf("frame %d: REQUEST_STREAM initial N = %d, want 1", i, e.n)
			}
			granted += uint64(e.n)
		case e.toResponder && e.typ == frame.TypeRequestN:
			if e.n != 1 {
				return fmt.Errorf("frame %d: REQUEST_N(%d), want REQUEST_N(1)", i, e.n)
			}
			granted += uint64(e.n)
			if granted-delivered > 1 {
				return fmt.Errorf("frame %d: responder holds %d unused credits after REQUEST_N (granted %d, delivered %d)", i, granted-delivered, granted, delivered)
			}
		case !e.toResponder && e.typ == frame.TypePayload:
			if !fragmenting && e.flags&frame.FlagNext != 0 {
				delivered++
				if delivered > granted {
					return fmt.Errorf("frame %d: item %d delivered with only %d credits granted", i, delivered, granted)
				}
			}
			fragmenting = e.flags&frame.FlagFollows != 0 && e.flags&frame.FlagComplete == 0
		}
	}
	if granted == 0 {
		return fmt.Errorf("no REQUEST_STREAM on stream %d", stream)
	}
	return nil
}
