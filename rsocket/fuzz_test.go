package rsocket

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// fuzzFrames splits b into frames: each is one length byte followed by that many bytes.
func fuzzFrames(b []byte) [][]byte {
	var fs [][]byte
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		if n > len(b) {
			n = len(b)
		}
		fs = append(fs, b[:n])
		b = b[n:]
	}
	return fs
}

func joinFrames(fs ...[]byte) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return b
}

// FuzzServerFrames feeds arbitrary frames after a valid SETUP to a server Conn whose handler uses every
// interaction. Whatever arrives, the Conn must not panic, and once closed it must have returned every
// pooled buffer.
func FuzzServerFrames(f *testing.F) {
	f.Add(joinFrames(frame.AppendRequestResponse(nil, 1, false, []byte("m"), []byte("d"))))
	f.Add(joinFrames(
		frame.AppendRequestResponse(nil, 1, true, []byte("m"), []byte("d")),
		frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, []byte("m2"), nil),
		frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("d2")),
	))
	f.Add(joinFrames(
		frame.AppendRequestChannel(nil, 3, 2, true, false, nil, []byte("c")),
		frame.AppendPayload(nil, 3, frame.FlagNext|frame.FlagComplete, nil, []byte("c2")),
		frame.AppendRequestN(nil, 3, 5),
		frame.AppendPayload(nil, 3, frame.FlagNext, nil, []byte("c3")),
		frame.AppendCancel(nil, 3),
	))
	f.Add(joinFrames(
		frame.AppendRequestStream(nil, 5, 3, false, nil, []byte("s")),
		frame.AppendRequestN(nil, 5, frame.MaxRequestN),
		frame.AppendError(nil, 5, frame.CodeApplicationError, "e"),
		frame.AppendLease(nil, 100, 5, nil),
		frame.AppendKeepalive(nil, true, 0, []byte("k")),
		frame.AppendMetadataPush(nil, []byte("mp")),
		frame.AppendRequestFNF(nil, 7, false, nil, []byte("f")),
	))
	f.Add(joinFrames(frame.AppendError(nil, 0, frame.CodeConnectionClose, "bye")))
	f.Fuzz(func(t *testing.T, in []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("fuzz iteration hung:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		base := bufpool.Outstanding()
		a, b := transport.Pipe()
		h := &HandlerFuncs{
			RequestResponseFunc: func(req Payload, s *Stream) { _ = s.Respond(req) },
			FireAndForgetFunc:   func(Payload) {},
			RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
				_ = s.Respond(req)
			},
			RequestChannelFunc: func(req Payload, n uint32, c bool, s *Stream) Subscriber {
				s.Request(2)
				return &funcSub{next: func(p Payload, c bool) { _ = s.Respond(p) }}
			},
			MetadataPushFunc: func([]byte) {},
		}
		go func() { // drain what the server writes
			for {
				if _, err := a.ReadFrame(); err != nil {
					return
				}
			}
		}()
		_ = a.WriteFrame(setupFrame(false, nil, nil), nil, nil)
		_ = a.Flush()
		c, err := Accept(context.Background(), b, ServerOptions{MaxReassembledSize: 1000}, func(*SetupInfo, *Conn) (Handler, error) {
			return h, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range fuzzFrames(in) {
			if a.WriteFrame(fr, nil, nil) != nil || a.Flush() != nil {
				break
			}
		}
		// A last request makes sure the reader has processed everything before the close.
		_ = a.WriteFrame(frame.AppendKeepalive(nil, true, 0, nil), nil, nil)
		_ = a.Flush()
		time.Sleep(time.Millisecond)
		_ = c.Close()
		_ = a.Close()
		<-c.Done()
		if n := bufpool.Outstanding(); n != base {
			t.Fatalf("%d pooled buffers outstanding after close", n-base)
		}
	})
}
