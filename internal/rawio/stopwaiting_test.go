//go:build unix

package rawio

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
)

// After StopWaiting a write to a full socket stops at EAGAIN with what it wrote, instead of waiting.
func TestStopWaitingStopsAtEAGAIN(t *testing.T) {
	c, _, _ := tcpPair(t) // the peer never reads
	if c.StopWaiting() {
		t.Fatal("StopWaiting reports a waiting write, none runs")
	}
	big := make([]byte, 64<<20)
	n, err := c.Writev([][]byte{big[:32<<20], big[32<<20:]})
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Writev into a full socket after StopWaiting: %d bytes, %v; want EAGAIN", n, err)
	}
	if n <= 0 || n >= int64(len(big)) {
		t.Errorf("wrote %d of %d bytes, want what the socket buffers took", n, len(big))
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("Write into the full socket: %v, want EAGAIN", err)
	}
}

// StopWaiting reports a write that waits for writability right now (the caller then closes the
// connection to end it); the write itself does not return until then.
func TestStopWaitingReportsWaitingWrite(t *testing.T) {
	c, srv, _ := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 64<<20))
		errc <- err
	}()
	testutil.Eventually(t, c.waiting.Load, "the write to wait for writability")
	if !c.StopWaiting() {
		t.Fatal("StopWaiting does not report the waiting write")
	}
	select {
	case err := <-errc:
		t.Fatalf("the waiting write returned before the close: %v", err)
	default:
	}
	srv.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("waiting write after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the waiting write")
	}
}
