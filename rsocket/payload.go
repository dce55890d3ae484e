package rsocket

import (
	"sync"

	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
)

// Payload is the metadata and data of one request or item. Metadata nil means "no metadata" (M flag
// clear); non-nil and empty means "empty metadata" (M flag set, length 0).
type Payload struct {
	Metadata []byte
	Data     []byte
}

// Message is a received payload that owns a pooled buffer (the answer of RequestResponse). Its slices
// are valid until Release, which must be called exactly once; the Message must not be used afterwards.
type Message struct {
	Payload
	buf *bufpool.Buffer
}

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// Release returns the message's buffer (and the message itself) to their pools.
func (m *Message) Release() {
	if m == nil {
		return
	}
	bufpool.Put(m.buf)
	*m = Message{}
	messagePool.Put(m)
}

// newMessage returns a Message owning buf, whose bytes are metadata (mdLen bytes, when hasMD) followed by
// data. buf may be nil (empty payload).
func newMessage(buf *bufpool.Buffer, mdLen int, hasMD bool) *Message {
	m := messagePool.Get().(*Message)
	m.buf = buf
	if buf != nil {
		b := buf.B
		if hasMD {
			m.Metadata = b[:mdLen:mdLen]
		}
		m.Data = b[mdLen:]
	}
	return m
}

// copyMessage copies md and data into one pooled buffer owned by a new Message.
func copyMessage(md, data []byte) *Message {
	n := len(md) + len(data)
	var buf *bufpool.Buffer
	if n > 0 {
		buf = bufpool.Get(n)
		copy(buf.B, md)
		copy(buf.B[len(md):], data)
	}
	m := newMessage(buf, len(md), md != nil)
	if md != nil && buf == nil {
		m.Metadata = emptyMetadata
	}
	return m
}

// emptyMetadata is a non-nil empty slice: "metadata present, zero length".
var emptyMetadata = []byte{}
