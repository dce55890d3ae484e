package rsocket

import (
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
)

// keepaliveLoop sends KEEPALIVE(R) every interval (client side) and closes the connection with
// ErrKeepaliveTimeout when no frame at all arrived from the peer for lifetime. The reader marks received
// frames in gotFrame; this loop samples it, so the lifetime is measured from the last received frame with
// the resolution of one tick (at most a quarter of the lifetime).
func (c *Conn) keepaliveLoop(interval, lifetime time.Duration, send bool) {
	defer close(c.kaDone)
	tick := interval
	if q := lifetime / 4; q < tick {
		tick = q
	}
	if tick < time.Millisecond {
		tick = time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastRecv := time.Now()
	lastSent := lastRecv
	for {
		select {
		case <-c.closing:
			return
		case now := <-t.C:
			if c.gotFrame.Swap(false) {
				lastRecv = now
			} else if now.Sub(lastRecv) >= lifetime {
				c.shutdown(ErrKeepaliveTimeout, frame.CodeConnectionError, "no keepalive within the maximum lifetime", true)
				return
			}
			if send && now.Sub(lastSent) >= interval-tick/2 {
				_ = c.sendKeepalive(true, nil)
				lastSent = now
			}
		}
	}
}
