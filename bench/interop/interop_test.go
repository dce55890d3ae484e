package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rsgate/rsgate/bench/interop/peers"
	"github.com/rsgate/rsgate/rsocket"
	"github.com/rsgate/rsgate/rsocket/extension"
	"github.com/rsgate/rsgate/rsocket/frame"

	golease "github.com/rsocket/rsocket-go/lease"
)

// fragMTU is the fragmentation size used on both sides in the main matrix: every 1 MiB payload is split
// into 17 fragments by the sender (ours or rsocket-go's) and reassembled by the receiver.
const fragMTU = 64 << 10

func caseCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestInterop runs every interaction model across every client/server/transport combination.
func TestInterop(t *testing.T) {
	for _, c := range combos {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel() // combinations are independent (own servers, own ports); cases within run in order
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
			}
		})
	}
}

type interopCase struct {
	name string
	run  func(t *testing.T, c combo)
}

var cases = []interopCase{
	{"setup", testSetup},
	{"rr_0B", func(t *testing.T, c combo) { testEcho(t, c, 0, fragMTU) }},
	{"rr_1KiB", func(t *testing.T, c combo) { testEcho(t, c, 1<<10, fragMTU) }},
	{"rr_1MiB_fragmented", func(t *testing.T, c combo) { testEcho(t, c, 1<<20, fragMTU) }},
	{"rr_1MiB_unfragmented", func(t *testing.T, c combo) { testEcho(t, c, 1<<20, 0) }},
	{"rr_2000_concurrent", testConcurrent},
	{"fire_and_forget", testFNF},
	{"metadata_push", testMetadataPush},
	{"application_error", testAppError},
	{"routing_unknown_route", testUnknownRoute},
	{"stream_request_1_at_a_time", testStreamOneByOne},
	{"stream_cancel", testStreamCancel},
	{"channel", testChannel},
	{"rr_1MiB_mtu_1KiB", func(t *testing.T, c combo) { testEchoWith(t, c, 1<<20, pairOpts{ourMTU: 1 << 10, goMTU: 1 << 10}) }},
	{"rr_large_metadata_fragmented", testLargeMetadata},
	{"stream_fragmented_items_1_at_a_time", testStreamFragmented},
	{"rr_cancel", testRRCancel},
	{"keepalive", testKeepalive},
	{"composite_multi_entry", testCompositeMultiEntry},
	{"streams_200_concurrent", testConcurrentStreams},
	{"server_requests_client", testServerRequests},
	{"lease", testLease},
	{"stream_application_error", testStreamError},
	{"stream_unbounded_10000", testStreamUnbounded},
	{"channel_fragmented_items", testChannelFragmented},
	{"rr_over_reassembly_limit", testOverReassemblyLimit},
}

func testSetup(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	// The server saw SETUP before the first request is answered; one round trip makes sure.
	if _, err := p.cl.RequestResponse(caseCtx(t), "echo", nil); err != nil {
		t.Fatalf("echo: %v", err)
	}
	select {
	case s := <-p.obs.Setups:
		want := peers.Setup{MetadataMIME: extension.MimeComposite, DataMIME: octetStream, Data: setupData}
		if s != want {
			t.Fatalf("server saw SETUP %+v, want %+v", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server reported no SETUP")
	}
}

func testEcho(t *testing.T, c combo, size, mtu int) {
	testEchoWith(t, c, size, pairOpts{ourMTU: mtu, goMTU: mtu})
}

func testEchoWith(t *testing.T, c combo, size int, o pairOpts) {
	p := newPairWith(t, c, o)
	mtu := o.ourMTU
	want := randomBytes(size, uint64(size))
	got, err := p.cl.RequestResponse(caseCtx(t), "echo", want)
	if err != nil {
		t.Fatalf("request-response %d B: %v", size, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo of %d B came back as %d B (first difference at %d)", size, len(got), firstDiff(got, want))
	}
	if mtu > 0 && size > mtu && p.tap != nil {
		// Both directions must really have been fragmented on the wire.
		var toResp, toReq int
		for _, e := range p.tap.events() {
			if e.typ == frame.TypeRequestResponse || e.typ == frame.TypePayload {
				if e.size > mtu {
					t.Errorf("frame %s of %d B exceeds the MTU %d", e.typ, e.size, mtu)
				}
				if e.toResponder {
					toResp++
				} else {
					toReq++
				}
			}
		}
		if min := size / mtu; toResp < min || toReq < min {
			t.Errorf("expected >= %d fragments each way, saw %d to the responder and %d to the requester", min, toResp, toReq)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testConcurrent(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			want := []byte(fmt.Sprintf("request-%d", i))
			got, err := p.cl.RequestResponse(ctx, "echo", want)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("request %d: answer %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Error(err)
		}
		failed++
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent requests failed", failed, n)
	}
	t.Logf("%s: %d concurrent request-responses on one connection in %v", c, n, time.Since(start).Round(time.Millisecond))
}

func testFNF(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	want := []string{"fnf-1", "fnf-2", "fnf-3"}
	for _, w := range want {
		if err := p.cl.FireAndForget(ctx, "fnf", []byte(w)); err != nil {
			t.Fatalf("fire-and-forget: %v", err)
		}
	}
	var got []string
	for len(got) < len(want) {
		select {
		case s := <-p.obs.FNF:
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("server observed %q, want %q", got, want)
		}
	}
	// Responders may run fire-and-forget handlers concurrently (rsocket-go does): compare as sets.
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("server observed %q, want %q", got, want)
	}
}

func testMetadataPush(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	md := extension.AppendCompositeEntry(nil, "application/x.rsgate.test", []byte("pushed"))
	if err := p.cl.MetadataPush(ctx, md); err != nil {
		t.Fatalf("metadata push: %v", err)
	}
	select {
	case got := <-p.obs.MetadataPush:
		if got != string(md) {
			t.Fatalf("server observed metadata % x, want % x", got, md)
		}
	case <-ctx.Done():
		t.Fatal("server observed no METADATA_PUSH")
	}
}

func testAppError(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	_, err := p.cl.RequestResponse(caseCtx(t), "fail", []byte("über-räschung ✓"))
	code, msg, ok := appError(err)
	if !ok {
		t.Fatalf("want an ERROR frame, got %v", err)
	}
	if want := peers.FailMessage([]byte("über-räschung ✓")); frame.ErrorCode(code) != frame.CodeApplicationError || msg != want {
		t.Fatalf("got ERROR %s %q, want APPLICATION_ERROR %q", frame.ErrorCode(code), msg, want)
	}
}

func testUnknownRoute(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	_, err := p.cl.RequestResponse(caseCtx(t), "nope.42", nil)
	code, msg, ok := appError(err)
	if !ok || frame.ErrorCode(code) != frame.CodeApplicationError || msg != "no route: nope.42" {
		t.Fatalf("want APPLICATION_ERROR %q (the responder decoded the routing tag), got %v", "no route: nope.42", err)
	}
}

func testStreamOneByOne(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	const n = 50
	got, extra, err := p.cl.StreamOneByOne(caseCtx(t), fmt.Sprintf("stream.%d", n), 0)
	if err != nil {
		t.Fatalf("stream: %v (after %d items)", err, len(got))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = peers.Item(i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stream items %q, want %q", got, want)
	}
	if extra > 0 {
		t.Errorf("%d items arrived while the previous one was unconsumed: the responder exceeded its credit", extra)
	}
	if p.tap == nil {
		return
	}
	ev := p.tap.events()
	id, ok := firstStream(ev, frame.TypeRequestStream)
	if !ok {
		t.Fatal("tap saw no REQUEST_STREAM")
	}
	if err := checkOneAtATime(ev, id); err != nil {
		t.Fatalf("back-pressure on the wire (tap at the %s): %v", tapSide(p), err)
	}
}

func tapSide(p *pair) string {
	if p.tap.atResponder {
		return "responder"
	}
	return "requester"
}

func testStreamCancel(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	const k = 5
	got, _, err := p.cl.StreamOneByOne(ctx, "infinite", k)
	if err != nil || len(got) != k {
		t.Fatalf("infinite stream: %d items, err %v; want %d items", len(got), err, k)
	}
	select {
	case r := <-p.obs.Cancels:
		if r != "infinite" {
			t.Fatalf("cancel observed on route %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("responder did not observe the cancel within 5s")
	}
	if p.tap != nil {
		id, _ := firstStream(p.tap.events(), frame.TypeRequestStream)
		deadline := time.Now().Add(2 * time.Second)
		for {
			var cancels int
			for _, e := range p.tap.events() {
				if e.stream == id && e.typ == frame.TypeCancel && e.toResponder {
					cancels++
				}
			}
			if cancels == 1 {
				break
			}
			if cancels > 1 || time.Now().After(deadline) {
				t.Fatalf("want exactly one CANCEL on stream %d, saw %d", id, cancels)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The connection stays usable after the cancel.
	if _, err := p.cl.RequestResponse(ctx, "echo", []byte("after-cancel")); err != nil {
		t.Fatalf("request after cancel: %v", err)
	}
}

func testChannel(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	items := make([]string, 20)
	want := make([]string, len(items))
	for i := range items {
		items[i] = fmt.Sprintf("ch-%d", i)
		want[i] = peers.EchoPrefix + items[i]
	}
	got, err := p.cl.Channel(caseCtx(t), "channel", items)
	if err != nil {
		t.Fatalf("channel: %v (got %d of %d echoes)", err, len(got), len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("channel echoes %q, want %q", got, want)
	}
}

// testLargeMetadata sends 300 KiB of metadata (a routing entry plus a custom entry) with 100 KiB of data
// at a 64 KiB MTU: metadata spans several fragments, and the last metadata fragment also carries data.
func testLargeMetadata(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	md := peers.OurRouteMetadata("mdsum")
	md = extension.AppendCompositeEntry(md, "application/x.rsgate.padding", randomBytes(300<<10, 7))
	got, err := p.cl.RequestResponseMD(caseCtx(t), md, randomBytes(100<<10, 8))
	if err != nil {
		t.Fatalf("request-response with %d B metadata: %v", len(md), err)
	}
	if want := peers.MetadataSum(md); string(got) != want {
		t.Fatalf("responder saw metadata %s, want %s", got, want)
	}
}

// testStreamFragmented streams 4 items of 200,000 B, each fragmented at 64 KiB, one credit at a time:
// a fragmented item counts as one item against the credit.
func testStreamFragmented(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	const n, size = 4, 200000
	got, extra, err := p.cl.StreamOneByOne(caseCtx(t), fmt.Sprintf("blob.%d.%d", n, size), 0)
	if err != nil {
		t.Fatalf("stream: %v (after %d items)", err, len(got))
	}
	if len(got) != n {
		t.Fatalf("got %d items, want %d", len(got), n)
	}
	for i, it := range got {
		if want := peers.Blob(i, size); it != string(want) {
			t.Fatalf("item %d: %d B, first difference at %d", i, len(it), firstDiff([]byte(it), want))
		}
	}
	if extra > 0 {
		t.Errorf("%d items arrived beyond the granted credit", extra)
	}
	if p.tap == nil {
		return
	}
	ev := p.tap.events()
	id, _ := firstStream(ev, frame.TypeRequestStream)
	frags := 0
	for _, e := range ev {
		if e.stream == id && e.typ == frame.TypePayload && e.flags&frame.FlagFollows != 0 {
			frags++
		}
	}
	if frags < n {
		t.Errorf("expected every item fragmented (F set on >= %d PAYLOAD frames), saw %d", n, frags)
	}
	if err := checkOneAtATime(ev, id); err != nil {
		t.Fatalf("back-pressure on the wire (tap at the %s): %v", tapSide(p), err)
	}
}

// testRRCancel abandons a request-response the responder never answers: the requester must send CANCEL
// and the responder must see it.
func testRRCancel(t *testing.T, c combo) {
	if c.client == "rsgo" {
		// reactor-go v0.5.5's mono processor: Subscription.Cancel only sets a flag and Request blocks
		// until the answer arrives, so rsocket-go never sends CANCEL for a request-response.
		t.Skip("rsocket-go v0.8.12 cannot cancel a request-response (no CANCEL frame is ever sent); see README.md")
	}
	p := newPair(t, c, fragMTU)
	ctx, cancel := context.WithTimeout(caseCtx(t), 200*time.Millisecond)
	defer cancel()
	if _, err := p.cl.RequestResponse(ctx, "slow", nil); err == nil {
		t.Fatal("slow request-response answered")
	}
	select {
	case r := <-p.obs.Cancels:
		if r != "slow" {
			t.Fatalf("cancel observed on route %q", r)
		}
	case <-time.After(5 * time.Second):
		msg := "responder did not observe a cancel within 5s of the requester giving up"
		if p.tap != nil {
			id, _ := firstStream(p.tap.events(), frame.TypeRequestResponse)
			n := 0
			for _, e := range p.tap.events() {
				if e.stream == id && e.typ == frame.TypeCancel {
					n++
				}
			}
			msg += fmt.Sprintf(" (%d CANCEL frames on stream %d at our end)", n, id)
		}
		t.Fatal(msg)
	}
	if _, err := p.cl.RequestResponse(caseCtx(t), "echo", []byte("after-cancel")); err != nil {
		t.Fatalf("request after cancel: %v", err)
	}
}

// testKeepalive runs a connection with a 50 ms keepalive and a 1 s lifetime idle for 1.5 s: both ends
// must keep it alive (KEEPALIVE with R answered without R), and it must still serve requests.
func testKeepalive(t *testing.T, c combo) {
	p := newPairWith(t, c, pairOpts{ourMTU: fragMTU, goMTU: fragMTU, keepalive: 50 * time.Millisecond, lifetime: time.Second})
	time.Sleep(1500 * time.Millisecond)
	if _, err := p.cl.RequestResponse(caseCtx(t), "echo", []byte("still-alive")); err != nil {
		t.Fatalf("request after 1.5 s idle with keepalive 50 ms / lifetime 1 s: %v", err)
	}
	if p.tap == nil {
		return
	}
	var asked, answered int
	for _, e := range p.tap.events() {
		if e.typ != frame.TypeKeepalive {
			continue
		}
		if e.toResponder && e.flags&frame.FlagRespond != 0 {
			asked++
		}
		if !e.toResponder && e.flags&frame.FlagRespond == 0 {
			answered++
		}
	}
	// 30 expected at 50 ms; loose bounds so that a loaded machine does not fail the test.
	if asked < 10 || answered < asked/2 {
		t.Fatalf("client sent %d KEEPALIVE(R) and got %d answers in 1.5 s, want >= 10 and most of them answered", asked, answered)
	}
}

// testCompositeMultiEntry puts the routing entry third, after a well-known auth entry and a custom-MIME
// entry, so the responder's composite decoder has to walk both kinds of entry header.
func testCompositeMultiEntry(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	md := extension.AppendCompositeEntry(nil, extension.MimeAuth, extension.AppendAuthBearer(nil, []byte("token-123")))
	md = extension.AppendCompositeEntry(md, "application/x.rsgate.custom-entry", []byte("custom"))
	md = append(md, peers.OurRouteMetadata("mdsum")...)
	got, err := p.cl.RequestResponseMD(caseCtx(t), md, []byte("x"))
	if err != nil {
		t.Fatalf("request-response: %v", err)
	}
	if want := peers.MetadataSum(md); string(got) != want {
		t.Fatalf("responder answered %s, want %s", got, want)
	}
}

// testConcurrentStreams runs 200 request(1)-at-a-time streams of 20 items at once on one connection.
func testConcurrentStreams(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	const streams, items = 200, 20
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			got, extra, err := p.cl.StreamOneByOne(ctx, fmt.Sprintf("stream.%d", items), 0)
			switch {
			case err != nil:
				errs <- fmt.Errorf("stream %d: %w after %d items", i, err, len(got))
			case len(got) != items || got[0] != peers.Item(0) || got[items-1] != peers.Item(items-1):
				errs <- fmt.Errorf("stream %d: items %q", i, got)
			case extra > 0:
				errs <- fmt.Errorf("stream %d: %d items beyond the credit", i, extra)
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d concurrent streams failed", n, streams)
	}
}

// testServerRequests sends requests from the server to the client's responder over the same connection
// (even stream ids): request-response, request(1)-at-a-time stream, channel.
func testServerRequests(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	srv := p.server()
	ctx := caseCtx(t)
	want := randomBytes(1<<10, 42)
	got, err := srv.RequestResponse(ctx, "echo", want)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("server -> client request-response: %d B, %v", len(got), err)
	}
	items, extra, err := srv.StreamOneByOne(ctx, "stream.10", 0)
	if err != nil || len(items) != 10 || items[9] != peers.Item(9) || extra > 0 {
		t.Fatalf("server -> client stream: %q, extra %d, %v", items, extra, err)
	}
	echoes, err := srv.Channel(ctx, "channel", []string{"s1", "s2", "s3"})
	if err != nil || !slices.Equal(echoes, []string{"echo:s1", "echo:s2", "echo:s3"}) {
		t.Fatalf("server -> client channel: %q, %v", echoes, err)
	}
	if p.tap != nil {
		for _, e := range p.tap.events() {
			if e.typ == frame.TypeRequestResponse && e.stream%2 != 0 && !e.toResponder {
				// toResponder is oriented for client-initiated streams; server requests travel the other way.
				t.Errorf("server-initiated REQUEST_RESPONSE on odd stream %d", e.stream)
			}
		}
	}
}

// testLease negotiates leases (SETUP with L); the server grants one lease of 5 requests. The requester
// must wait for it, send exactly 5 requests, and refuse the 6th locally.
func testLease(t *testing.T, c combo) {
	const n = 5
	p := newPairWith(t, c, pairOpts{ourMTU: fragMTU, goMTU: fragMTU, lease: n})
	ctx := caseCtx(t)
	if err := p.cl.WaitLease(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for {
			_, err := p.cl.RequestResponse(ctx, "echo", []byte("leased"))
			if i == 0 && errors.Is(err, golease.ErrLeaseNotRcv) && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond) // rsocket-go has not seen the LEASE yet; nothing was sent
				continue
			}
			if err != nil {
				t.Fatalf("request %d of %d within the lease: %v", i+1, n, err)
			}
			break
		}
	}
	_, err := p.cl.RequestResponse(ctx, "echo", []byte("beyond"))
	if err == nil {
		t.Fatalf("request %d beyond a lease of %d succeeded", n+1, n)
	}
	if !errors.Is(err, rsocket.ErrNoLease) && !errors.Is(err, golease.ErrLeaseNoMoreRequests) {
		if code, _, ok := appError(err); !ok || frame.ErrorCode(code) != frame.CodeRejected {
			t.Fatalf("request beyond the lease: %v, want a local no-lease error or REJECTED", err)
		}
	}
	if p.tap == nil {
		return
	}
	var leases, requests int
	for _, e := range p.tap.events() {
		switch {
		case e.typ == frame.TypeLease && !e.toResponder:
			leases++
		case e.typ == frame.TypeRequestResponse && e.toResponder:
			requests++
		}
	}
	if leases != 1 || requests > n+1 {
		t.Fatalf("wire: %d LEASE frames (want 1), %d REQUEST_RESPONSE (want %d, at most %d)", leases, requests, n, n+1)
	}
	if requests == n+1 {
		t.Logf("the requester sent the request beyond its lease; the responder rejected it")
	}
}

// testStreamError ends a stream with APPLICATION_ERROR after 3 items: the items arrive, then the error
// with its message.
func testStreamError(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	got, _, err := p.cl.StreamOneByOne(caseCtx(t), "streamfail.3", 0)
	if want := []string{peers.Item(0), peers.Item(1), peers.Item(2)}; !slices.Equal(got, want) {
		t.Errorf("items %q, want %q", got, want)
	}
	code, msg, ok := appError(err)
	if want := peers.StreamFailMessage(3); !ok || frame.ErrorCode(code) != frame.CodeApplicationError || msg != want {
		t.Fatalf("stream ended with %v, want APPLICATION_ERROR %q", err, want)
	}
}

// testStreamUnbounded requests 10,000 items with n = 2^31-1 (unbounded by convention) and gets all of
// them in order without any REQUEST_N.
func testStreamUnbounded(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	const n = 10000
	got, err := p.cl.StreamAll(caseCtx(t), fmt.Sprintf("stream.%d", n))
	if err != nil {
		t.Fatalf("stream: %v after %d items", err, len(got))
	}
	if len(got) != n {
		t.Fatalf("%d items, want %d", len(got), n)
	}
	for i, it := range got {
		if it != peers.Item(i) {
			t.Fatalf("item %d is %q", i, it)
		}
	}
	if p.tap == nil {
		return
	}
	ev := p.tap.events()
	id, _ := firstStream(ev, frame.TypeRequestStream)
	for _, e := range ev {
		if e.stream == id && e.typ == frame.TypeRequestStream && e.n != frame.MaxRequestN {
			t.Errorf("REQUEST_STREAM n = %d, want %d", e.n, frame.MaxRequestN)
		}
	}
}

// testChannelFragmented sends five 100 KiB elements through an echo channel at a 64 KiB MTU: every
// element is fragmented in both directions.
func testChannelFragmented(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	items := make([]string, 5)
	want := make([]string, len(items))
	for i := range items {
		items[i] = string(randomBytes(100<<10, uint64(100+i)))
		want[i] = peers.EchoPrefix + items[i]
	}
	got, err := p.cl.Channel(caseCtx(t), "channel", items)
	if err != nil {
		t.Fatalf("channel: %v (got %d of %d echoes)", err, len(got), len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("%d echoes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("echo %d: %d B, first difference at %d", i, len(got[i]), firstDiff([]byte(got[i]), []byte(want[i])))
		}
	}
}

// testOverReassemblyLimit sends a 20 MiB request and asks for a 20 MiB answer, both fragmented at 64 KiB,
// past our default 16 MiB MaxReassembledSize (rsocket-go has no limit). Where our side receives, the
// request must fail cleanly, and the connection must go on serving (the rest of the abandoned fragment
// sequence dropped quietly).
func testOverReassemblyLimit(t *testing.T, c combo) {
	p := newPair(t, c, fragMTU)
	ctx := caseCtx(t)
	big := randomBytes(peers.BigSize, 11)
	_, errReq := p.cl.RequestResponse(ctx, "echo", big) // received by the server, answered back
	_, errResp := p.cl.RequestResponse(ctx, "big", nil) // 20 MiB answer
	if c.client == "ours" && (errReq == nil || errResp == nil) {
		t.Fatalf("our client accepted a 20 MiB payload over its 16 MiB limit: echo err %v, big err %v", errReq, errResp)
	}
	if c.server == "ours" && errReq == nil {
		t.Fatal("a 20 MiB request to our server (16 MiB limit) succeeded")
	}
	if errReq != nil && c.client == "ours" && c.server != "ours" && !errors.Is(errReq, rsocket.ErrTooLarge) {
		t.Errorf("our client: echo of 20 MiB failed with %v, want ErrTooLarge", errReq)
	}
	t.Logf("20 MiB request: %v; 20 MiB answer: %v", errReq, errResp)
	for i := range 3 {
		want := []byte(fmt.Sprintf("after-%d", i))
		got, err := p.cl.RequestResponse(ctx, "echo", want)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("request after the oversized ones: %q %v", got, err)
		}
	}
}
