//go:build linux

// Command idle measures the gateway's memory per idle client connection.
//
//	go run ./bench/ws/idle -n 10000            (or bench/ws/idle.sh, which raises ulimit -n)
//
// For each scenario it starts a fresh gateway process (this binary with -serve: the demo RSocket service and
// the ingress with config.example.yaml, on 127.0.0.1 ports of its own), opens n client connections and
// leaves them idle, then reports the growth of the gateway's resident set (VmRSS, after a forced GC and
// FreeOSMemory in the gateway) divided by n:
//
//	ws-chat     WebSocket upgrades of the request-channel route /ws/chat (no message sent: the channel opens
//	            with the first message)
//	rsocket     WebSocket upgrades of the rsocket route /rsocket plus a SETUP frame (an accepted RSocket
//	            connection)
//	http        keep-alive HTTP/1.1 connections after one GET /api/users/1 each
//
// -reduce runs the gateway with ingress Options.ReduceMemoryUsage (fasthttp releases the read/write buffers
// of idle keep-alive connections), which is what the gateway does by default (limits.reduce_memory: true).
// The program prints a Markdown table.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rsgate/rsgate"
	"github.com/rsgate/rsgate/ingress"
	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/mapping"
	"github.com/rsgate/rsgate/pool"
	"github.com/rsgate/rsgate/rsocket/frame"
)

func main() {
	var (
		serve     = flag.Bool("serve", false, "internal: run the gateway and print its address")
		reduce    = flag.Bool("reduce", false, "gateway with ReduceMemoryUsage (idle keep-alive connections release their buffers)")
		n         = flag.Int("n", 10000, "idle connections per scenario")
		scenarios = flag.String("scenarios", "ws-chat,rsocket,http", "comma-separated: ws-chat, rsocket, http")
	)
	flag.Parse()
	if *serve {
		if err := runServer(*reduce); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("| scenario | connections | reduce_memory_usage | gateway RSS before | after | per connection |\n|---|---|---|---|---|---|\n")
	for _, sc := range strings.Split(*scenarios, ",") {
		if err := measure(sc, *n, *reduce); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", sc, err)
			os.Exit(1)
		}
	}
}

// runServer is the gateway process: demo service + ingress, address on stdout; SIGUSR1 forces a GC and
// returns freed memory to the OS (so RSS shows live memory).
func runServer(reduce bool) error {
	d, err := demo.Serve("127.0.0.1:0", nil)
	if err != nil {
		return err
	}
	cfg, err := mapping.Parse(rsgate.ExampleConfig, rsgate.ExampleConfigName)
	if err != nil {
		return err
	}
	cfg.Backends["demo"].Addresses = []string{d.Addr().String()}
	table, err := mapping.Compile(cfg)
	if err != nil {
		return err
	}
	pools, err := pool.NewGroup(cfg, pool.Options{})
	if err != nil {
		return err
	}
	pools.Start()
	srv, err := ingress.New(cfg, table, pools, ingress.Options{ReduceMemoryUsage: reduce})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	for !pools.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			runtime.GC()
			debug.FreeOSMemory()
			if os.Getenv("IDLE_VERBOSE") != "" {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(os.Stderr, "gateway: goroutines %d, heap in use %.1f MiB, stacks %.1f MiB\n",
					runtime.NumGoroutine(), float64(ms.HeapInuse)/(1<<20), float64(ms.StackInuse)/(1<<20))
			}
		}
	}()
	fmt.Println(ln.Addr().String())
	return srv.Serve(ln)
}

func measure(scenario string, n int, reduce bool) error {
	args := []string{"-serve"}
	if reduce {
		args = append(args, "-reduce")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("gateway did not start: %w", err)
	}
	addr := strings.TrimSpace(line)
	pid := cmd.Process.Pid

	open := opener(scenario, addr)
	if open == nil {
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	// Warm up: a few connections so that pools and lazily built structures exist before the baseline.
	warm, err := openMany(open, 50)
	if err != nil {
		return err
	}
	closeAll(warm)
	time.Sleep(500 * time.Millisecond)
	before, err := settledRSS(pid)
	if err != nil {
		return err
	}
	conns, err := openMany(open, n)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	time.Sleep(2 * time.Second)
	after, err := settledRSS(pid)
	if err != nil {
		return err
	}
	per := float64(after-before) / float64(n)
	fmt.Printf("| %s | %d | %v | %.1f MiB | %.1f MiB | %.1f KiB |\n", scenario, n, reduce,
		float64(before)/(1<<20), float64(after)/(1<<20), per/1024)
	return nil
}

func settledRSS(pid int) (int64, error) {
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return 0, err
	}
	time.Sleep(1500 * time.Millisecond)
	return rss(pid)
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func openMany(open func() (net.Conn, error), n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	work := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := open()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		closeAll(conns)
		return nil, first
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

func opener(scenario, addr string) func() (net.Conn, error) {
	switch scenario {
	case "ws-chat":
		return func() (net.Conn, error) { return upgrade(addr, "/ws/chat") }
	case "rsocket":
		return func() (net.Conn, error) {
			c, err := upgrade(addr, "/rsocket")
			if err != nil {
				return nil, err
			}
			setup := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 60000, Lifetime: 600000,
				MetadataMIME: "message/x.rsocket.composite-metadata.v0", DataMIME: "application/json"}, nil, nil)
			if _, err := c.Write(wsBinaryFrame(setup)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
	case "http":
		return func() (net.Conn, error) {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return nil, err
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("GET /api/users/1 HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")); err != nil {
				c.Close()
				return nil, err
			}
			br := bufio.NewReader(c)
			status, err := br.ReadString('\n')
			if err != nil || !strings.Contains(status, " 200 ") {
				c.Close()
				return nil, fmt.Errorf("GET: %q %v", status, err)
			}
			clen := 0
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					c.Close()
					return nil, err
				}
				if l == "\r\n" {
					break
				}
				if v, ok := strings.CutPrefix(strings.ToLower(l), "content-length:"); ok {
					clen, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
			if _, err := br.Discard(clen); err != nil {
				c.Close()
				return nil, err
			}
			_ = c.SetDeadline(time.Time{})
			return c, nil
		}
	}
	return nil
}

// upgrade opens a WebSocket by hand (a client library would cost the client process memory, which does
// not matter here, but this also keeps the bench free of dependencies).
func upgrade(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	// Read the 101 answer byte by byte: nothing after it may be consumed.
	var head []byte
	buf := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return nil, fmt.Errorf("upgrade: %w", err)
		}
		head = append(head, buf[0])
		if len(head) > 4096 {
			c.Close()
			return nil, errors.New("upgrade: answer too long")
		}
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101") {
		c.Close()
		return nil, fmt.Errorf("upgrade: %q", strings.SplitN(string(head), "\r\n", 2)[0])
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// wsBinaryFrame is one masked (zero key) binary WebSocket frame.
func wsBinaryFrame(p []byte) []byte {
	b := []byte{0x82}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	b = append(b, 0, 0, 0, 0) // mask key
	return append(b, p...)
}
