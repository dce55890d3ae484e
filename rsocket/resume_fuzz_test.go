package rsocket

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/internal/bufpool"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// FuzzResumeServer: a resumable server session gets arbitrary frames (KEEPALIVE positions among them),
// loses its transport, and is resumed with a RESUME whose positions come from the input, followed by
// more arbitrary frames. Whatever the positions, the server answers RESUME_OK or REJECTED_RESUME, never
// panics, and returns every pooled buffer once closed.
func FuzzResumeServer(f *testing.F) {
	pos := func(server, client uint64) []byte {
		b := make([]byte, 16)
		binary.BigEndian.PutUint64(b, server)
		binary.BigEndian.PutUint64(b[8:], client)
		return b
	}
	f.Add(pos(0, 0), joinFrames(frame.AppendRequestStream(nil, 1, 2, false, nil, []byte("go"))), []byte{})
	f.Add(pos(7, 12), joinFrames(
		frame.AppendRequestStream(nil, 1, 2, false, nil, []byte("go")),
		frame.AppendKeepalive(nil, true, 7, nil),
	), joinFrames(frame.AppendRequestN(nil, 1, 5)))
	f.Add(pos(1<<62, 3), joinFrames(frame.AppendKeepalive(nil, false, 1<<62, nil)), []byte{})
	f.Add(pos(3, 0), joinFrames(
		frame.AppendRequestResponse(nil, 1, true, []byte("m"), []byte("d")),
		frame.AppendPayload(nil, 1, frame.FlagFollows|frame.FlagNext, []byte("m2"), nil),
	), joinFrames(frame.AppendPayload(nil, 1, frame.FlagNext|frame.FlagComplete, nil, []byte("d2"))))
	f.Fuzz(func(t *testing.T, positions, before, after []byte) {
		if len(positions) < 16 {
			return
		}
		// Under 10 s: the fuzzing engine declares a worker deadlocked at 10 s and shows nothing of it, so
		// the stacks go to a file first (a worker's own output is lost while the engine minimizes).
		watchdog := time.AfterFunc(7*time.Second, func() {
			buf := make([]byte, 1<<20)
			stacks := buf[:runtime.Stack(buf, true)]
			name := filepath.Join(os.TempDir(), fmt.Sprintf("rsgate-fuzz-hang-%d.txt", os.Getpid()))
			_ = os.WriteFile(name, stacks, 0o644)
			panic("fuzz iteration hung (stacks in " + name + "):\n" + string(stacks))
		})
		defer watchdog.Stop()
		base := bufpool.Outstanding()
		opts := ServerOptions{MaxReassembledSize: 1000, Resume: ResumeOptions{Enabled: true, BufferSize: 64}}
		opts.Sessions = NewSessions(opts.Resume)
		drain := func(tc transport.Conn) {
			go func() {
				for {
					if _, err := tc.ReadFrame(); err != nil {
						return
					}
				}
			}()
		}
		send := func(tc transport.Conn, frames [][]byte) {
			for _, fr := range frames {
				if tc.WriteFrame(fr, nil, nil) != nil || tc.Flush() != nil {
					return
				}
			}
		}
		a, b := transport.Pipe()
		drain(a)
		send(a, [][]byte{frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 120000,
			Token: []byte("tok")}, nil, nil)})
		c, err := Accept(context.Background(), b, opts, func(*SetupInfo, *Conn) (Handler, error) {
			return digitStream(3), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		send(a, fuzzFrames(before))
		time.Sleep(time.Millisecond)
		_ = a.Close()
		a2, b2 := transport.Pipe()
		drain(a2)
		send(a2, [][]byte{frame.AppendResume(nil, 1, 0, []byte("tok"),
			binary.BigEndian.Uint64(positions)&(1<<63-1), binary.BigEndian.Uint64(positions[8:])&(1<<63-1))})
		_, _ = Accept(context.Background(), b2, opts, nil)
		send(a2, fuzzFrames(after))
		time.Sleep(time.Millisecond)
		_ = c.Close()
		_ = a2.Close()
		<-c.Done()
		if n := bufpool.Outstanding(); n != base {
			t.Fatalf("%d pooled buffers outstanding after close", n-base)
		}
	})
}
