package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/rsocket/extension"

	rsgo "github.com/rsocket/rsocket-go"
	goext "github.com/rsocket/rsocket-go/extension"
	"github.com/rsocket/rsocket-go/payload"
	"github.com/rsocket/rsocket-go/rx/flux"
	"github.com/rsocket/rsocket-go/rx/mono"
)

// httpMetaMIME is the gateway's composite metadata entry (docs/METADATA.md).
const httpMetaMIME = "message/x.rsgate.http.v0"

// TestGatewayRSocketGo runs the gateway binary (cmd/gateway) in front of rsocket-go v0.8.12 backends, one
// over TCP and one over WebSocket, and drives it with plain HTTP, a WebSocket channel, and an rsocket-go
// client relayed through the gateway's rsocket route.
func TestGatewayRSocketGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	obs := peers.NewObservations()
	backends := map[string]*peers.GoServer{}
	for _, kind := range []string{"tcp", "ws"} {
		s, err := peers.StartGoServer(kind, 0, func(context.Context, payload.SetupPayload, rsgo.CloseableRSocket) (rsgo.RSocket, error) {
			return gatewayBackend(obs), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		backends[kind] = s
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	build := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/gateway")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/gateway: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(gatewayConfig(backends["tcp"].Addr, backends["ws"].URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, ctx, bin, cfg)

	for _, b := range []string{"tcp", "ws"} {
		t.Run("backend_"+b, func(t *testing.T) {
			base := "http://" + gw + "/" + b
			waitReady(t, base+"/echo")

			t.Run("request_response", func(t *testing.T) {
				body := `{"hello":"rsocket-go via ` + b + `"}`
				code, _, got := httpDo(t, "POST", base+"/echo", body)
				if code != 200 || got != body {
					t.Fatalf("POST echo: %d %q, want 200 %q", code, got, body)
				}
				code, _, got = httpDo(t, "GET", base+"/users/42", "")
				if code != 200 || got != `{"id":"42"}` {
					t.Fatalf("GET users/42: %d %q", code, got)
				}
			})
			t.Run("application_error_mapped", func(t *testing.T) {
				code, _, got := httpDo(t, "GET", base+"/users/missing", "")
				if code != 404 || !strings.Contains(got, "not found") {
					t.Fatalf("GET users/missing: %d %q, want 404 (errors: {\"not found\": 404}) with the backend's message", code, got)
				}
			})
			t.Run("response_metadata_from_backend", func(t *testing.T) {
				// rsocket-go encodes the gateway's custom MIME entry in the response: status and a header.
				code, h, got := httpDo(t, "POST", base+"/created", `{"name":"x"}`)
				if code != 201 || h.Get("X-Backend") != "rsocket-go" || got != `{"name":"x"}` {
					t.Fatalf("POST created: %d X-Backend=%q %q, want 201, rsocket-go and the body", code, h.Get("X-Backend"), got)
				}
			})
			t.Run("request_metadata_seen_by_backend", func(t *testing.T) {
				code, _, got := httpDoH(t, "GET", base+"/inspect?q=1", "", http.Header{"X-Request-Id": {"req-7"}})
				if code != 200 {
					t.Fatalf("GET inspect: %d %q", code, got)
				}
				var in inspection
				if err := json.Unmarshal([]byte(got), &in); err != nil {
					t.Fatalf("inspect answer %q: %v", got, err)
				}
				if in.Route != "inspect" || in.Err != "" {
					t.Fatalf("rsocket-go decoded route %q (error %q) from the gateway's composite metadata, MIME types %q", in.Route, in.Err, in.Mimes)
				}
				if !slices.Contains(in.Mimes, httpMetaMIME) || in.Method != "GET" || in.Target != "/"+b+"/inspect?q=1" ||
					in.Headers["x-request-id"] != "req-7" {
					t.Fatalf("gateway entry (forward_headers: [x-request-id]) decoded by rsocket-go as %+v, want GET /%s/inspect?q=1 with x-request-id: req-7", in, b)
				}
				t.Logf("composite entries seen by rsocket-go: %q", in.Mimes)
			})
			t.Run("request_stream_ndjson", func(t *testing.T) {
				code, _, got := httpDo(t, "GET", base+"/ticks/7", "")
				want := ""
				for i := range 7 {
					want += fmt.Sprintf(`{"tick":%d}`+"\n", i)
				}
				if code != 200 || got != want {
					t.Fatalf("GET ticks/7: %d %q, want %q", code, got, want)
				}
			})
			t.Run("fire_and_forget", func(t *testing.T) {
				body := `{"log":"` + b + `"}`
				code, _, _ := httpDo(t, "POST", base+"/log", body)
				if code != 202 {
					t.Fatalf("POST log: %d, want 202", code)
				}
				select {
				case got := <-obs.FNF:
					if got != body {
						t.Fatalf("backend logged %q, want %q", got, body)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("rsocket-go backend observed no fire-and-forget")
				}
			})
			t.Run("websocket_channel", func(t *testing.T) {
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				ws, _, err := d.DialContext(ctx, "ws://"+gw+"/"+b+"/chat", nil)
				if err != nil {
					t.Fatalf("dial chat: %v", err)
				}
				defer ws.Close()
				ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				for i := range 3 {
					if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`"hi-%d"`, i))); err != nil {
						t.Fatal(err)
					}
				}
				for i := range 3 {
					_, msg, err := ws.ReadMessage()
					if want := fmt.Sprintf(`echo:"hi-%d"`, i); err != nil || string(msg) != want {
						t.Fatalf("chat message %d: %q %v, want %q", i, msg, err, want)
					}
				}
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			})
			t.Run("rsocket_relay_rsocket_go_client", func(t *testing.T) {
				// rsocket-go client -> gateway (RSocket over WebSocket, relayed) -> rsocket-go backend.
				life, stop := context.WithCancel(context.Background())
				defer stop()
				c, err := rsgo.Connect().
					MetadataMimeType(extension.MimeComposite).
					DataMimeType("application/json").
					ConnectTimeout(5 * time.Second).
					Transport(rsgo.WebsocketClient().SetURL("ws://" + gw + "/" + b + "/rsocket").Build()).
					Start(life)
				if err != nil {
					t.Fatalf("rsocket-go connect through the gateway: %v", err)
				}
				cl := &goClient{c: c}
				defer cl.Close()
				cctx := caseCtx(t)
				want := randomBytes(100<<10, 9)
				got, err := cl.RequestResponse(cctx, "echo", want)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("relayed request-response (100 KiB): %d B, %v", len(got), err)
				}
				items, extra, err := cl.StreamOneByOne(cctx, "stream.10", 0)
				if err != nil || len(items) != 10 || items[9] != peers.Item(9) || extra > 0 {
					t.Fatalf("relayed request(1) stream: %q extra %d %v", items, extra, err)
				}
				echoes, err := cl.Channel(cctx, "channel", []string{"r1", "r2", "r3"})
				if err != nil || !slices.Equal(echoes, []string{"echo:r1", "echo:r2", "echo:r3"}) {
					t.Fatalf("relayed channel: %q %v", echoes, err)
				}
				_, err = cl.RequestResponse(cctx, "fail", []byte("relay"))
				if code, msg, ok := appError(err); !ok || code != 0x201 || msg != peers.FailMessage([]byte("relay")) {
					t.Fatalf("relayed APPLICATION_ERROR: %v", err)
				}
			})
		})
	}
}

func gatewayConfig(tcpAddr, wsURL string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `listen: "127.0.0.1:0"
admin: "off"
log:
  level: info
  format: json
backends:
  tcp:
    transport: tcp
    addresses: [%q]
    connections: 1
    data_mime: application/json
    metadata_mime: message/x.rsocket.composite-metadata.v0
  ws:
    transport: websocket
    addresses: [%q]
    connections: 1
    data_mime: application/json
    metadata_mime: message/x.rsocket.composite-metadata.v0
routes:
`, tcpAddr, wsURL)
	for _, b := range []string{"tcp", "ws"} {
		fmt.Fprintf(&sb, `  - {name: %[1]s-echo, method: POST, path: /%[1]s/echo, backend: %[1]s, interaction: request-response, route: echo, timeout: 5s}
  - {name: %[1]s-created, method: POST, path: /%[1]s/created, backend: %[1]s, interaction: request-response, route: created, timeout: 5s}
  - name: %[1]s-inspect
    method: GET
    path: /%[1]s/inspect
    backend: %[1]s
    interaction: request-response
    route: inspect
    timeout: 5s
    forward_headers: [x-request-id]
  - name: %[1]s-users
    method: GET
    path: /%[1]s/users/{id}
    backend: %[1]s
    interaction: request-response
    route: users.{id}
    timeout: 5s
    errors:
      "not found": 404
  - name: %[1]s-ticks
    method: GET
    path: /%[1]s/ticks/{count}
    backend: %[1]s
    interaction: request-stream
    route: ticks.{count}
    stream: {format: ndjson, window: 2}
  - {name: %[1]s-log, method: POST, path: /%[1]s/log, backend: %[1]s, interaction: fire-and-forget, route: log}
  - name: %[1]s-chat
    path: /%[1]s/chat
    backend: %[1]s
    interaction: request-channel
    route: chat
    websocket: {origins: ["*"]}
  - name: %[1]s-rsocket
    path: /%[1]s/rsocket
    backend: %[1]s
    interaction: rsocket
    rsocket: {allow: ["*"]}
    websocket: {origins: ["*"]}
`, b)
	}
	return sb.String()
}

// startGateway runs the binary and returns its listen address (from its "gateway started" log line).
func startGateway(t *testing.T, ctx context.Context, bin, cfg string) string {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	logs := &syncBuffer{}
	addr := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		re := regexp.MustCompile(`"listen":"([^"]+)"`)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			if m := re.FindSubmatch(sc.Bytes()); m != nil && bytes.Contains(sc.Bytes(), []byte("gateway started")) {
				addr <- string(m[1])
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("gateway exited with %v", err)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("gateway did not stop within 20s of SIGINT")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("gateway exited: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway did not log its listen address within 20s:\n%s", logs.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return ""
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpDo(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	return httpDoH(t, method, url, body, nil)
}

func httpDoH(t *testing.T, method, url, body string, h http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// waitReady polls until the backend pool is connected (the route stops answering 503).
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{}`))
		resp, err := httpClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 15s (last: %v %v)", url, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inspection is what the inspect route reports about the request metadata, decoded by rsocket-go.
type inspection struct {
	Route   string            `json:"route"`
	Mimes   []string          `json:"mimes"`
	Method  string            `json:"method"`
	Target  string            `json:"target"`
	Headers map[string]string `json:"headers"`
	Err     string            `json:"err,omitempty"`
}

// gatewayBackend serves the gateway routes (users.{id}, ticks.{n}, created, inspect, log, chat) and,
// for the relay test, the peers routes, written against rsocket-go's API.
func gatewayBackend(obs *peers.Observations) rsgo.RSocket {
	base := peers.GoResponder(obs)
	route := func(p payload.Payload) string {
		r, _ := peers.GoRoute(p.Metadata())
		return r
	}
	return rsgo.NewAbstractSocket(
		rsgo.FireAndForget(func(p payload.Payload) {
			if route(p) == "log" {
				select {
				case obs.FNF <- string(p.Data()):
				default:
				}
				return
			}
			base.FireAndForget(p)
		}),
		rsgo.MetadataPush(base.MetadataPush),
		rsgo.RequestResponse(func(p payload.Payload) mono.Mono {
			r := route(p)
			switch {
			case strings.HasPrefix(r, "users."):
				id := strings.TrimPrefix(r, "users.")
				if id == "missing" {
					return mono.Error(errors.New("not found: user " + id))
				}
				return mono.Just(payload.New([]byte(`{"id":"`+id+`"}`), nil))
			case r == "created":
				v := []byte{1, 2, 0, 0, 0, 1} // version 1, kind response, status, 1 header
				binary.BigEndian.PutUint16(v[2:], 201)
				v = append(v, byte(len("x-backend")))
				v = append(v, "x-backend"...)
				v = binary.BigEndian.AppendUint16(v, uint16(len("rsocket-go")))
				v = append(v, "rsocket-go"...)
				md, err := goext.NewCompositeMetadataBuilder().Push(httpMetaMIME, v).Build()
				if err != nil {
					return mono.Error(err)
				}
				return mono.Just(payload.New(clone(p.Data()), md))
			case r == "inspect":
				md, _ := p.Metadata()
				b, _ := json.Marshal(inspect(md))
				return mono.Just(payload.New(b, nil))
			}
			return base.RequestResponse(p)
		}),
		rsgo.RequestStream(func(p payload.Payload) flux.Flux {
			r := route(p)
			if n, ok := strings.CutPrefix(r, "ticks."); ok {
				var count int
				if _, err := fmt.Sscanf(n, "%d", &count); err != nil {
					return flux.Error(err)
				}
				return flux.Create(func(ctx context.Context, s flux.Sink) {
					for i := range count {
						s.Next(payload.New([]byte(fmt.Sprintf(`{"tick":%d}`, i)), nil))
					}
					s.Complete()
				})
			}
			return base.RequestStream(p)
		}),
		rsgo.RequestChannel(base.RequestChannel),
	)
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func inspect(md []byte) (in inspection) {
	defer func() {
		if r := recover(); r != nil {
			in.Err = fmt.Sprint("rsocket-go scanner panicked: ", r)
		}
	}()
	sc := goext.NewCompositeMetadataBytes(md).Scanner()
	for sc.Scan() {
		mime, v, err := sc.Metadata()
		if err != nil {
			in.Err = err.Error()
			return in
		}
		in.Mimes = append(in.Mimes, mime)
		switch mime {
		case goext.MessageRouting.String():
			if tags, err := goext.ParseRoutingTags(v); err == nil && len(tags) > 0 {
				in.Route = tags[0]
			}
		case httpMetaMIME:
			// [u8 version=1][u8 kind=1][u8 method len][method][u16 target len][target]...
			if len(v) >= 3 && v[0] == 1 && v[1] == 1 {
				ml := int(v[2])
				if len(v) >= 3+ml+2 {
					in.Method = string(v[3 : 3+ml])
					tl := int(binary.BigEndian.Uint16(v[3+ml:]))
					if len(v) >= 5+ml+tl {
						in.Target = string(v[5+ml : 5+ml+tl])
						in.Headers = parseHeaders(v[5+ml+tl:])
					}
				}
			} else {
				in.Err = fmt.Sprintf("gateway entry % x", v)
			}
		}
	}
	return in
}

// parseHeaders reads [u16 count] then count x ([u8 name len][name][u16 value len][value]).
func parseHeaders(b []byte) map[string]string {
	h := map[string]string{}
	if len(b) < 2 {
		return h
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for range n {
		if len(b) < 1 {
			return h
		}
		nl := int(b[0])
		if len(b) < 1+nl+2 {
			return h
		}
		name := string(b[1 : 1+nl])
		vl := int(binary.BigEndian.Uint16(b[1+nl:]))
		if len(b) < 3+nl+vl {
			return h
		}
		h[name] = string(b[3+nl : 3+nl+vl])
		b = b[3+nl+vl:]
	}
	return h
}
