package ingress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
)

// TestRequestResponseClientDisconnect: a client gives up on a slow request-response call; the slow-call
// watch notices and the backend gets CANCEL long before the route timeout (30s).
func TestRequestResponseClientDisconnect(t *testing.T) {
	sp, _, g := startSpecial(t, Options{SlowCallWatch: 20 * time.Millisecond})
	c, err := net.DialTimeout("tcp", g.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /hang-long HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 1 }, "the call to be in flight")
	_ = c.Close()
	sp.expectCanceled(t, "hang", "backend not canceled after the client went away")
	testutil.Eventually(t, func() bool { return g.srv.InFlight() == 0 }, "the call to end")
}

// TestSlowCallKeepAlive: a watched slow call leaves the connection usable for the next request.
func TestSlowCallKeepAlive(t *testing.T) {
	_, _, g := startSpecial(t, Options{SlowCallWatch: 10 * time.Millisecond})
	c, err := net.DialTimeout("tcp", g.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	for i, path := range []string{"/sleep/150", "/sleep/0", "/sleep/100", "/empty"} {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d (%s): status %d", i, path, resp.StatusCode)
		}
	}
}
