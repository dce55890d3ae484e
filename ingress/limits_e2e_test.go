package ingress

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/mapping"
)

func metricsText(g *gateway) string {
	var buf bytes.Buffer
	g.set.WritePrometheus(&buf)
	return buf.String()
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var m struct{ Code string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%d body %q: %v", resp.StatusCode, b, err)
	}
	return m.Code
}

// Over-limit uploads without Expect: every client reads the 413, none sees a reset (the connection is
// half-closed and drained, not closed with unread bytes), and the 413s count under the route (issue 13).
func TestOverLimitUploadsAllSee413(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes()), Options{}) // max_body 64 KiB
	overLimitUploads(t, g, func() (net.Conn, error) { return net.Dial("tcp", g.addr) })
}

// The same over TLS: the lingering happens on the TCP socket under the TLS connection.
func TestOverLimitUploadsAllSee413TLS(t *testing.T) {
	d := startDemo(t)
	cfg := newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes())
	cert, key := writeSelfSigned(t)
	cfg.TLS = &mapping.IngressTLS{Cert: cert, Key: key}
	g := startGateway(t, cfg, Options{})
	overLimitUploads(t, g, func() (net.Conn, error) {
		return tls.Dial("tcp", g.addr, &tls.Config{InsecureSkipVerify: true})
	})
}

func overLimitUploads(t *testing.T, g *gateway, dial func() (net.Conn, error)) {
	const uploads = 10
	const size = 4 << 20
	var wg sync.WaitGroup
	errs := make(chan error, uploads)
	for i := 0; i < uploads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(testTimeout))
			fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
			// Send the whole body before reading, as a simple client (curl without Expect) does: a gateway that
			// closes with unread bytes resets the connection, and the client's write fails before it reads.
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					errs <- fmt.Errorf("upload cut after %d bytes: %w", sent, err)
					return
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("no status: %w", err)
				return
			}
			if resp.StatusCode != 413 {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			if code := errorCode(t, resp); code != CodeBodyTooLarge {
				errs <- fmt.Errorf("code %q", code)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := metricsText(g); !strings.Contains(m, `rsgate_http_requests_total{route="echo",status="4xx"} 10`+"\n") ||
		!strings.Contains(m, `rsgate_http_requests_total{route="_unmatched",status="4xx"} 0`+"\n") {
		t.Errorf("413s not counted under route echo:\n%s", m)
	}
}

// Expect: 100-continue with an over-limit Content-Length is answered 413 at once, with no "100 Continue"
// before it; within the limit the client gets 100 Continue and then the answer.
func TestExpectContinueOverLimitGets413Only(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, newConfig(map[string]string{"demo": d.Addr().String()}, demoRoutes()), Options{})
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", 1<<20)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 413") {
		t.Fatalf("first line %q, want a 413 (no 100 Continue first)", line)
	}

	c2, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(c2, "POST /api/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	br2 := bufio.NewReader(c2)
	line, _ = br2.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("within the limit: first line %q, want 100 Continue", line)
	}
	_, _ = br2.ReadString('\n') // the blank line after 100 Continue
	io.WriteString(c2, "{}")
	resp, err := http.ReadResponse(br2, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after 100 Continue: %v %v", resp, err)
	}
	if m := metricsText(g); !strings.Contains(m, `rsgate_http_requests_total{route="echo",status="4xx"} 1`+"\n") {
		t.Errorf("the Expect 413 is not counted under route echo:\n%s", m)
	}
}
