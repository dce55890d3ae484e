package ingress

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rsgate/rsgate/internal/testutil"
	"github.com/rsgate/rsgate/mapping"
)

// TestSSEResumeBoundToIdentity: on a route with JWT auth, a parked (or live) stream can be resumed only by
// the identity that opened it. Another user presenting its Last-Event-ID is answered exactly as for an
// unknown id (a new stream of their own, or 410 on resume_expired: gone), and the stream is left alone: the
// owner's live connection keeps reading, and the owner resumes it later where it left off.
func TestSSEResumeBoundToIdentity(t *testing.T) {
	_, b := newFlowBackend(t)
	k := newAuthKeys()
	withAuth := func(expired string) func(*mapping.Route) {
		return func(r *mapping.Route) {
			r.Stream.Window, r.Stream.ResumeWindow, r.Stream.ResumeExpired = 64, mapping.Duration(10*time.Second), expired
			r.Auth = &mapping.RouteAuth{Provider: "users"}
		}
	}
	routes := []routeSpec{
		{name: "seq", path: "/seq/{n}", backend: "fb", interaction: mapping.InteractionRequestStream, tag: "seq.{n}", mutate: withAuth(mapping.ResumeExpiredNew)},
		{name: "seq-gone", path: "/seq-gone/{n}", backend: "fb", interaction: mapping.InteractionRequestStream, tag: "seq.{n}", mutate: withAuth(mapping.ResumeExpiredGone)},
	}
	cfg := newConfig(map[string]string{"fb": b.addr}, routes)
	cfg.Limits.MaxParkedStreams = 16
	cfg.Auth = map[string]*mapping.AuthProvider{"users": jwtProvider("users", writeJWKS(t, k.jwks()))}
	g := startGatewayListener(t, cfg, Options{}, func(l net.Listener) net.Listener { return smallBufListener{l} })
	alice := authHeader(k.hs.Sign(claims("alice", time.Minute, nil)))
	mallory := authHeader(k.hs.Sign(claims("mallory", time.Minute, nil)))

	for _, path := range []string{"/seq/200", "/seq-gone/200"} {
		misses := g.set.GetOrCreateCounter("rsgate_stream_resume_misses_total").Get()
		conn, status, r := openSSE(t, g.addr, path, "", alice...)
		if status != 200 {
			t.Fatalf("%s: alice: status %d", path, status)
		}
		var last sseItem
		for i := 0; i < 10; i++ {
			it, err := readItem(t, r)
			if err != nil {
				t.Fatal(err)
			}
			last = it
		}
		stolen := last.session + "-" + strconv.Itoa(last.seq)

		// Mallory presents alice's id while her stream is live: no takeover; the answer is that of an
		// unknown id.
		mc, status, mr := openSSE(t, g.addr, path, stolen, mallory...)
		if path == "/seq-gone/200" {
			if status != 410 {
				t.Fatalf("%s: another identity's id: status %d, want 410 as for an unknown id", path, status)
			}
			_, unknown, _ := openSSE(t, g.addr, path, "0123456789abcdef0123456789abcdef-10", mallory...)
			if unknown != status {
				t.Fatalf("%s: unknown id %d, another identity's id %d: they must not differ", path, unknown, status)
			}
		} else {
			it, err := readItem(t, mr)
			if status != 200 || err != nil || it.session == last.session || it.n != 0 || it.seq != 1 {
				t.Fatalf("%s: another identity's id: status %d, first event %+v, %v; want a new stream", path, status, it, err)
			}
		}
		_ = mc.Close()
		// Alice's connection was not taken over: she reads on.
		if it, err := readItem(t, r); err != nil || it.session != last.session || it.n != 10 {
			t.Fatalf("%s: alice after the attempt: %+v, %v", path, it, err)
		}
		last.seq++

		// Parked, the same: mallory gets nothing, and the stream stays parked for alice.
		parked := g.srv.resume.Parked()
		_ = conn.Close()
		testutil.Eventually(t, func() bool { return g.srv.resume.Parked() >= parked+1 }, "alice's stream to be parked")
		mc, status, _ = openSSE(t, g.addr, path, last.session+"-"+strconv.Itoa(last.seq), mallory...)
		_ = mc.Close()
		if path == "/seq-gone/200" && status != 410 || path == "/seq/200" && status != 200 {
			t.Fatalf("%s: another identity's id on a parked stream: status %d", path, status)
		}
		if got := g.set.GetOrCreateCounter("rsgate_stream_resume_misses_total").Get() - misses; got < 2 {
			t.Fatalf("%s: %d resume misses counted, want the attempts counted as misses", path, got)
		}

		// Alice resumes with another token of hers (same subject and provider).
		again := authHeader(k.rs.Sign(claims("alice", time.Minute, nil)))
		ac, status, r2 := openSSE(t, g.addr, path, last.session+"-"+strconv.Itoa(last.seq), again...)
		if status != 200 {
			t.Fatalf("%s: alice resuming: status %d", path, status)
		}
		it, err := readItem(t, r2)
		if err != nil || it.session != last.session || it.n != 11 {
			t.Fatalf("%s: alice resumed at %+v, %v; want item 11 of session %s", path, it, err, last.session)
		}
		_ = ac.Close()
	}
}
