package rsocket

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// TestStress mixes every interaction with random cancellations, errors, slow answers and a final close
// while requests are in flight, to shake out races (run it with -race) and leaks on every path.
func TestStress(t *testing.T) {
	forBoth(t, func(t *testing.T, tcp bool) {
		leakCheck(t)
		h := &HandlerFuncs{
			RequestResponseFunc: func(req Payload, s *Stream) {
				data := append([]byte(nil), req.Data...)
				switch data[0] % 4 {
				case 0:
					_ = s.Respond(Payload{Data: data})
				case 1:
					_ = s.Error(frame.CodeApplicationError, "odd")
				default:
					go func() {
						time.Sleep(time.Duration(data[0]%3) * time.Millisecond)
						_ = s.Respond(Payload{Metadata: []byte("m"), Data: data})
					}()
				}
			},
			FireAndForgetFunc: func(req Payload) {},
			RequestStreamFunc: func(req Payload, n uint32, s *Stream) {
				count, _ := strconv.Atoi(string(req.Data))
				go func() {
					for i := 0; i < count; i++ {
						if s.Send(context.Background(), Payload{Data: []byte("item")}) != nil {
							return
						}
					}
					_ = s.Complete()
				}()
			},
			RequestChannelFunc: func(req Payload, n uint32, complete bool, s *Stream) Subscriber {
				s.Request(8)
				return &funcSub{
					next: func(p Payload, c bool) {
						_ = s.Respond(Payload{Data: []byte("x")}) // may fail without credit: fine
						if c {
							_ = s.Complete()
						}
					},
					complete: func() { _ = s.Complete() },
				}
			},
		}
		client, server := pair(t, pairCfg{tcp: tcp, handler: h, client: Options{MTU: 128}, server: ServerOptions{MTU: 128}})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 7))
				for i := 0; i < 150; i++ {
					switch r.IntN(5) {
					case 0, 1:
						ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2000))*time.Microsecond)
						data := make([]byte, 1+r.IntN(400))
						data[0] = byte(r.IntN(256))
						m, _, err := client.RequestResponse(ctx, Payload{Data: data})
						cancel()
						if err == nil {
							m.Release()
						} else {
							var e *Error
							if !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &e) && !errors.Is(err, ErrClosed) {
								t.Errorf("request-response: %v", err)
							}
						}
					case 2:
						_ = fnfErr(client.FireAndForget(context.Background(), Payload{Data: []byte("f")}, FireAndForgetOptions{}))
					case 3:
						sub := newCollector()
						st, err := client.RequestStream(Payload{Data: []byte(strconv.Itoa(r.IntN(50)))}, uint32(1+r.IntN(10)), sub)
						if err != nil {
							continue
						}
						if r.IntN(2) == 0 {
							st.Cancel()
						} else {
							st.Request(frame.MaxRequestN)
							select {
							case <-st.Done():
							case <-time.After(5 * time.Second):
								t.Error("stream did not end")
							}
						}
					case 4:
						st, err := client.RequestChannel(Payload{Data: []byte("c")}, 4, false, newCollector())
						if err != nil {
							continue
						}
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
						_ = st.Send(ctx, Payload{Data: []byte("c2")})
						cancel()
						if r.IntN(2) == 0 {
							st.Cancel()
						} else {
							_ = st.Complete()
						}
					}
				}
			}(uint64(g))
		}
		// Server-initiated requests run at the same time (the client has no handler: REJECTED).
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_, _, err := server.RequestResponse(context.Background(), Payload{Data: []byte("s")})
				var e *Error
				if !errors.As(err, &e) || e.Code != frame.CodeRejected {
					t.Errorf("server request: %v", err)
					return
				}
			}
		}()
		wg.Wait()
		// Close with requests in flight.
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, _, err := client.RequestResponse(context.Background(), Payload{Data: []byte{2}})
				if err == nil {
					m.Release()
				}
			}()
		}
		_ = client.Close()
		wg.Wait()
	})
}
