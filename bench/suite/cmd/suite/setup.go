package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The HTTP peers: name -> the proxy process and its backend process (for CPU accounting).
type peer struct {
	name, proxy, backend string
	port                 int
}

var httpPeers []peer

const slowMS = 50

var userID = strings.Repeat("u", 92) // GET /api/users/<id>: a 100-byte JSON answer {"id":"uuu..."}

func (s *Suite) setup() {
	for _, n := range []string{"httpbackend", "rsbackend", "rsgo", "upfast", "upslow", "gw", "gwadmin", "gwrsgo", "gwrsgoadmin", "nginx", "haproxy", "caddy", "gwctl", "gwctladmin", "rsbackendctl"} {
		s.ports[n] = freePort()
	}
	p := s.ports
	writeFile("body.json", makeBody(1024))
	gomax := []string{"GOMAXPROCS=" + strconv.Itoa(s.sutN)}
	wsMax := strconv.Itoa(4 << 20)
	_ = wsMax

	writeFile("gateway.yaml", gatewayConfig(p["gw"], p["gwadmin"], p["rsbackend"]))
	// the tail section's control pair (a second gateway and demo service, started there)
	writeFile("gateway-control.yaml", gatewayConfig(p["gwctl"], p["gwctladmin"], p["rsbackendctl"]))
	writeFile("gateway-rsgo.yaml", gatewayYAML("an rsocket-go v0.8.12 server (bench/suite/cmd/rsgoserver)", p["gwrsgo"], p["gwrsgoadmin"], "rsgo", p["rsgo"], ""))

	nginxDir := *tmpDir + "/nginx"
	_ = os.MkdirAll(nginxDir+"/tmp", 0o755)
	writeFile("nginx/nginx.conf", fmt.Sprintf(`# rsgate benchmark suite: nginx as a keep-alive reverse proxy.
daemon off;
master_process on;
worker_processes %d;
worker_rlimit_nofile %[7]d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections %[8]d; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    upstream backend { server 127.0.0.1:%[3]d; keepalive 64; keepalive_requests 10000000; keepalive_timeout 120s; }
    upstream slow { server 127.0.0.1:%[4]d; keepalive 1024; keepalive_requests 10000000; keepalive_timeout 120s; }
    upstream wsup { server 127.0.0.1:%[5]d; }
    server {
        listen 127.0.0.1:%[6]d backlog=4096;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location /api/slow/ { proxy_pass http://slow; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_read_timeout 60s; }
        location /ws/ {
            proxy_pass http://wsup; proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";
            proxy_read_timeout 600s;
        }
    }
}
`, s.sutN, nginxDir, p["httpbackend"], p["upslow"], p["upfast"], p["nginx"], openFilesLimit()-100, openFilesLimit()-200))
	writeFile("haproxy.cfg", fmt.Sprintf(`# rsgate benchmark suite: haproxy as a keep-alive reverse proxy.
global
    nbthread %d
    maxconn 9000
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    server s1 127.0.0.1:%d
`, s.sutN, p["haproxy"], p["httpbackend"]))
	_ = os.MkdirAll(*tmpDir+"/caddy", 0o755)
	writeFile("caddy/Caddyfile", fmt.Sprintf(`# rsgate benchmark suite: caddy as a keep-alive reverse proxy.
{
    admin off
    auto_https off
}
http://127.0.0.1:%d {
    reverse_proxy /ws/* 127.0.0.1:%d
    reverse_proxy 127.0.0.1:%d {
        transport http {
            keepalive 120s
            keepalive_idle_conns_per_host 64
        }
    }
}
`, p["caddy"], p["upfast"], p["httpbackend"]))

	// backends
	s.must(s.spawn("httpbackend", gomax, bin("httpbackend"), "-listen", addr(p["httpbackend"])), p["httpbackend"])
	s.must(s.spawn("rsbackend", gomax, bin("rsbackend"), "-listen", addr(p["rsbackend"])), p["rsbackend"])
	s.must(s.spawn("rsgo", gomax, bin("rsgoserver"), "-listen", addr(p["rsgo"])), p["rsgo"])
	s.must(s.spawn("upfast", gomax, bin("upstream"), "-listen", addr(p["upfast"])), p["upfast"])
	s.must(s.spawn("upslow", gomax, bin("upstream"), "-listen", addr(p["upslow"]), "-delay", fmt.Sprint(slowMS)+"ms"), p["upslow"])
	// proxies
	for _, pr := range []peer{
		{"gateway", "gw", "rsbackend", p["gw"]},
		{"gateway-rsgo", "gwrsgo", "rsgo", p["gwrsgo"]},
		{"nginx", "nginx", "httpbackend", p["nginx"]},
		{"haproxy", "haproxy", "httpbackend", p["haproxy"]},
		{"caddy", "caddy", "httpbackend", p["caddy"]},
	} {
		if err := s.startProxy(pr.name); err != nil {
			s.note(fmt.Sprintf("%s: %v; not measured", pr.name, err))
			continue
		}
		httpPeers = append(httpPeers, pr)
	}
	httpPeers = append([]peer{{"direct", "", "httpbackend", p["httpbackend"]}}, httpPeers...)
	// sanity: every peer echoes the body
	body, _ := os.ReadFile(*tmpDir + "/body.json")
	var ok []peer
	for _, pr := range httpPeers {
		if err := checkEcho(pr.port, body); err != nil {
			s.note(fmt.Sprintf("%s: POST /api/echo check failed (%v); not measured", pr.name, err))
			continue
		}
		ok = append(ok, pr)
	}
	httpPeers = ok
	logf("HTTP peers: %v", peerNames(httpPeers))
}

// gatewayConfig is the suite's gateway config: listen and admin ports, and the demo service's port.
func gatewayConfig(listen, admin, demo int) string {
	return gatewayYAML("the demo RSocket service (bench/http/cmd/rsbackend)", listen, admin, "demo", demo, `  - {name: slow, method: GET, path: "/api/slow/{ms}", backend: demo, interaction: request-response, route: "slow.{ms}", timeout: 30s}
  - name: ticks
    method: GET
    path: "/api/ticks/{count}"
    backend: demo
    interaction: request-stream
    route: "ticks.{count}"
    stream: {format: sse, window: 64}
  - name: chat
    path: /ws/chat
    backend: demo
    interaction: request-channel
    route: chat
    websocket: {origins: ["*"]}
  - {name: browser, path: /rsocket, backend: demo, interaction: rsocket, rsocket: {allow: ["*"]}, websocket: {origins: ["*"]}}
`)
}

// gatewayYAML is a suite gateway config in front of one RSocket backend (name, port) with the echo and
// users routes, then more routes (YAML list items).
func gatewayYAML(about string, listen, admin int, backend string, port int, moreRoutes string) string {
	return fmt.Sprintf(`# rsgate benchmark suite: the gateway in front of %[1]s.
listen: "127.0.0.1:%[2]d"
admin: "127.0.0.1:%[3]d"
log: {level: warn, format: json, access_log: {enabled: false}}
limits: {idle_timeout: 600s}
backends:
  %[4]s:
    transport: tcp
    addresses: ["127.0.0.1:%[5]d"]
    connections: 2
    data_mime: application/json
    metadata_mime: message/x.rsocket.composite-metadata.v0
    max_inflight: 100000
routes:
  - {name: echo, method: POST, path: /api/echo, backend: %[4]s, interaction: request-response, route: echo, timeout: 10s}
  - {name: users, method: GET, path: "/api/users/{id}", backend: %[4]s, interaction: request-response, route: "users.{id}", timeout: 10s}
%[6]s`, about, listen, admin, backend, port, moreRoutes)
}

func peerNames(ps []peer) []string {
	var n []string
	for _, p := range ps {
		n = append(n, p.name)
	}
	return n
}

// startProxy (re)starts a proxy by its peer name with the configs written by setup.
func (s *Suite) startProxy(name string) error {
	p := s.ports
	gomax := []string{"GOMAXPROCS=" + strconv.Itoa(s.sutN)}
	var pr *Proc
	var port int
	switch name {
	case "gateway":
		pr, port = s.spawn("gw", gomax, bin("gateway"), "-config", *tmpDir+"/gateway.yaml"), p["gw"]
	case "gateway-rsgo":
		pr, port = s.spawn("gwrsgo", gomax, bin("gateway"), "-config", *tmpDir+"/gateway-rsgo.yaml"), p["gwrsgo"]
	case "nginx":
		if _, err := exec.LookPath("nginx"); err != nil {
			return fmt.Errorf("not installed")
		}
		pr, port = s.spawn("nginx", nil, "nginx", "-p", *tmpDir+"/nginx", "-c", *tmpDir+"/nginx/nginx.conf", "-e", *tmpDir+"/nginx/error.log"), p["nginx"]
	case "haproxy":
		if _, err := exec.LookPath("haproxy"); err != nil {
			return fmt.Errorf("not installed")
		}
		pr, port = s.spawn("haproxy", nil, "haproxy", "-db", "-f", *tmpDir+"/haproxy.cfg"), p["haproxy"]
	case "caddy":
		if _, err := exec.LookPath("caddy"); err != nil {
			return fmt.Errorf("not installed")
		}
		c := *tmpDir + "/caddy"
		pr, port = s.spawn("caddy", append(gomax, "HOME="+c, "XDG_DATA_HOME="+c, "XDG_CONFIG_HOME="+c), "caddy", "run", "--config", c+"/Caddyfile", "--adapter", "caddyfile"), p["caddy"]
	}
	return waitPort(pr, port)
}

func (s *Suite) must(p *Proc, port int) {
	if err := waitPort(p, port); err != nil {
		panic(err)
	}
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func checkEcho(port int, body []byte) error {
	var last error
	for range 50 { // the gateway dials its backend in the background
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/echo", port), "application/json", bytes.NewReader(body))
		if err == nil {
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Equal(got, body) {
				return nil
			}
			err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(got))
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

func makeBody(size int) string {
	head := `{"user":{"id":4242,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","dev"]},"items":[{"sku":"A-1","qty":2,"price":9.99},{"sku":"B-22","qty":1,"price":19.5}],"note":"`
	tail := `"}`
	pad := strings.Repeat("lorem ipsum dolor sit amet ", size/27+1)
	return head + pad[:size-len(head)-len(tail)] + tail
}

// ---- wrk ----

type wrkResult struct {
	requests, seconds, p50, p90, p99, p999, max, errors float64
	curve                                               [][2]float64
}

var summaryRE = regexp.MustCompile(`SUITE_SUMMARY (.*)`)

// wrk runs wrk pinned to the load CPUs against 127.0.0.1:port.
func (s *Suite) wrk(outName string, port, conns int, d time.Duration, method, path string, body bool) (wrkResult, error) {
	return s.wrkT(2, outName, port, conns, d, method, path, body)
}

func (s *Suite) wrkT(threads int, outName string, port, conns int, d time.Duration, method, path string, body bool) (wrkResult, error) {
	args := []string{"wrk", "-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds()+0.5)) + "s",
		"--timeout", "10s", "--latency", "-s", *suiteDir + "/wrk.lua", fmt.Sprintf("http://127.0.0.1:%d%s", port, path)}
	if d < time.Second {
		args[3] = "-d1s"
	}
	args = wrapCPU(s.loadCPUs, args)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "SUITE_METHOD="+method, "SUITE_PATH="+path)
	if body {
		cmd.Env = append(cmd.Env, "SUITE_BODY="+*tmpDir+"/body.json")
	}
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(*tmpDir+"/"+outName+".txt", out, 0o644)
	var r wrkResult
	m := summaryRE.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no summary (%v): %s", err, tail(string(out), 300))
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(string(m[1])) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	fl := func(k string) float64 { v, _ := strconv.ParseFloat(kv[k], 64); return v }
	r.requests, r.seconds = fl("requests"), fl("duration_us")/1e6
	r.p50, r.p90, r.p99, r.p999, r.max, r.errors = fl("p50_us"), fl("p90_us"), fl("p99_us"), fl("p999_us"), fl("max_us"), fl("errors")
	for _, c := range strings.Split(kv["curve"], ",") {
		a, b, _ := strings.Cut(c, ":")
		x, _ := strconv.ParseFloat(a, 64)
		y, _ := strconv.ParseFloat(b, 64)
		r.curve = append(r.curve, [2]float64{x, y})
	}
	return r, nil
}
