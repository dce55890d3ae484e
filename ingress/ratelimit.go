package ingress

import (
	"hash/maphash"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/rsgate/rsgate/mapping"
)

// Rate limits (keys rate_limit and websocket.rate_limit): token buckets in the GCRA form (the generic
// cell rate algorithm, equivalent to a token bucket of burst B refilled one token per interval T): a
// bucket is one int64, its theoretical arrival time tat. A request at time now is allowed when
// max(tat, now) + T - now <= B*T, and then tat becomes max(tat, now) + T.
//
// Buckets are kept per key (client IP, authenticated subject or a header's value) in a sharded table of
// bounded size: keys are hashed with a per-process random seed (64 bits; an attacker cannot aim
// collisions), each shard holds at most ceil(max_keys/shards) buckets, and a new key in a full shard
// evicts with the CLOCK algorithm, preferring a bucket that has refilled completely (evicting it loses
// nothing: a fresh bucket is full too). Memory: 55 to 80 bytes per key (map slot and entry, measured by
// TestLimiterMemoryBound), so 100,000 keys take 5.5 to 8 MB per limiter. Counters live in this process only: replicas do not share them, and
// a configuration reload starts every bucket full again.

// RateLimitPolicyGlobal is the policy name of the top-level rate_limit in the RateLimit headers.
const RateLimitPolicyGlobal = "global"

// CodeRateLimited is the JSON error code of a request refused by a rate limit (429).
const CodeRateLimited = "RATE_LIMITED"

var (
	strRateLimitPolicy = []byte("RateLimit-Policy")
	strRateLimit       = []byte("RateLimit")
)

// gcra applies one request at now to the bucket whose state is *tat. It returns whether the request is
// allowed, the whole tokens left after it, how long until a token is available again (0 when one is),
// and how long until the bucket is full.
func gcra(tat *int64, now, interval, tau int64) (ok bool, remaining int64, wait, full int64) {
	t := *tat
	if t < now {
		t = now
	}
	next := t + interval
	if next-now > tau {
		return false, 0, next - now - tau, t - now
	}
	*tat = next
	return true, (tau - (next - now)) / interval, max(0, next-now-tau+interval), next - now
}

// limiterShards is the number of shards of a keyed limiter with many keys.
const limiterShards = 64

// keyedLimiter is one rate_limit policy: buckets by key, shared by the routes the policy covers.
type keyedLimiter struct {
	interval int64 // ns per token
	tau      int64 // burst * interval
	base     time.Time
	seed     maphash.Seed
	keyKind  uint8 // keyIP, keySubject, keyHeader
	header   []byte
	policy   []byte // the RateLimit-Policy value: "name";q=N;w=W
	name     []byte // `"name"`: the start of the RateLimit value
	shards   []limiterShard
	perShard int
	rejected *metrics.Counter // nil without metrics
}

const (
	keyIP uint8 = iota
	keySubject
	keyHeader
)

// limiterShard is one lock's worth of buckets.
type limiterShard struct {
	mu   sync.Mutex
	idx  map[uint64]int32 // key hash -> index into ents
	ents []bucketEntry
	hand int // CLOCK hand
	_    [40]byte
}

type bucketEntry struct {
	hash uint64
	tat  int64
	ref  bool
}

// newKeyedLimiter builds the limiter of policy c, named name in the RateLimit headers. It returns nil
// when the rate is off.
func newKeyedLimiter(c *mapping.RateLimitConfig, name string, set *metrics.Set) *keyedLimiter {
	r := c.ParsedRate()
	if r.Off() {
		return nil
	}
	burst := int64(c.EffectiveBurst())
	l := &keyedLimiter{
		interval: max(1, int64(r.Interval())),
		base:     time.Now(),
		seed:     maphash.MakeSeed(),
	}
	l.tau = burst * l.interval
	switch {
	case c.Key == mapping.RateKeySubject:
		l.keyKind = keySubject
	case c.KeyHeader() != "":
		l.keyKind, l.header = keyHeader, []byte(c.KeyHeader())
	}
	l.name = []byte(strconv.Quote(name))
	l.policy = append([]byte(nil), l.name...)
	l.policy = append(l.policy, ";q="...)
	l.policy = strconv.AppendInt(l.policy, r.Count, 10)
	l.policy = append(l.policy, ";w="...)
	l.policy = strconv.AppendInt(l.policy, int64(r.Per/time.Second), 10)
	maxKeys := c.EffectiveMaxKeys()
	n := 1
	if maxKeys >= 16*limiterShards {
		n = limiterShards
	}
	l.perShard = (maxKeys + n - 1) / n
	l.shards = make([]limiterShard, n)
	for i := range l.shards {
		l.shards[i].idx = make(map[uint64]int32)
	}
	if set != nil {
		l.rejected = set.GetOrCreateCounter(`rsgate_rate_limited_total{policy="` + name + `"}`)
	}
	return l
}

// hashKey returns the bucket key of the request: the subject (auth's, else the verified client
// certificate's), the header's value or the client address (IPv6 by /64 prefix, since one client commonly
// holds a whole /64), tagged by kind so that the key spaces cannot collide on purpose.
func (l *keyedLimiter) hashKey(ctx *fasthttp.RequestCtx, rq *request) uint64 {
	switch l.keyKind {
	case keySubject:
		if len(rq.subject) > 0 {
			return maphash.Bytes(l.seed, rq.subject) ^ 0x5b5b5b5b5b5b5b5b
		}
		if len(rq.certSubject) > 0 { // mTLS only: the certificate's subject, its own key space
			return maphash.Bytes(l.seed, rq.certSubject) ^ 0x6d6d6d6d6d6d6d6d
		}
	case keyHeader:
		if v := ctx.Request.Header.PeekBytes(l.header); len(v) > 0 {
			return maphash.Bytes(l.seed, v) ^ 0x3c3c3c3c3c3c3c3c
		}
	}
	ip := ctx.RemoteIP()
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	} else if len(ip) == net.IPv6len {
		ip = ip[:8]
	}
	return maphash.Bytes(l.seed, ip)
}

// take charges one request for key h at now (ns since l.base).
func (l *keyedLimiter) take(h uint64, now int64) (ok bool, remaining, wait, full int64) {
	sh := &l.shards[h%uint64(len(l.shards))]
	sh.mu.Lock()
	i, found := sh.idx[h]
	if !found {
		i = sh.insert(h, now, l.perShard)
	}
	e := &sh.ents[i]
	e.ref = true
	ok, remaining, wait, full = gcra(&e.tat, now, l.interval, l.tau)
	sh.mu.Unlock()
	return ok, remaining, wait, full
}

// insert adds a full bucket for h, evicting one when the shard is at its bound. Called with mu held.
func (sh *limiterShard) insert(h uint64, now int64, bound int) int32 {
	if len(sh.ents) < bound {
		sh.ents = append(sh.ents, bucketEntry{hash: h, tat: now})
		i := int32(len(sh.ents) - 1)
		sh.idx[h] = i
		return i
	}
	// CLOCK: skip (and clear) recently used buckets that are not full yet; two rounds at most.
	for n := 0; n < 2*len(sh.ents); n++ {
		e := &sh.ents[sh.hand]
		if e.tat <= now || !e.ref {
			break
		}
		e.ref = false
		sh.hand = (sh.hand + 1) % len(sh.ents)
	}
	i := int32(sh.hand)
	sh.hand = (sh.hand + 1) % len(sh.ents)
	delete(sh.idx, sh.ents[i].hash)
	sh.ents[i] = bucketEntry{hash: h, tat: now}
	sh.idx[h] = i
	return i
}

// len returns the number of buckets held (for tests).
func (l *keyedLimiter) len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.idx)
		sh.mu.Unlock()
	}
	return n
}

// allow charges the request to its bucket and sets the RateLimit-Policy and RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers-11, same syntax since -08; structured fields: RateLimit-Policy:
// "name";q=N;w=SECONDS and RateLimit: "name";r=REMAINING;t=SECONDS, t being the time until the bucket is
// full again). Over the limit it answers 429 with Retry-After (whole seconds until a token is back, at
// least 1) and returns false. It does not allocate for a key it has seen.
func (l *keyedLimiter) allow(ctx *fasthttp.RequestCtx, rq *request) bool {
	now := int64(ctx.Time().Sub(l.base))
	ok, remaining, wait, full := l.take(l.hashKey(ctx, rq), now)
	h := &ctx.Response.Header
	rq.rl = rateLimitState{remaining: remaining, reset: ceilSeconds(full)}
	l.setHeaders(h, rq.rl)
	if ok {
		return true
	}
	if l.rejected != nil {
		l.rejected.Inc()
	}
	var buf [20]byte
	h.SetBytesKV(strRetryAfter, strconv.AppendInt(buf[:0], max(1, ceilSeconds(wait)), 10))
	writeJSONError(ctx, fasthttp.StatusTooManyRequests, "rate limit exceeded", CodeRateLimited, nil)
	return false
}

// rateLimitState is what one decision answers in the RateLimit header.
type rateLimitState struct {
	remaining int64 // whole requests left
	reset     int64 // seconds until the bucket is full
}

// setHeaders sets RateLimit-Policy and RateLimit.
func (l *keyedLimiter) setHeaders(h *fasthttp.ResponseHeader, st rateLimitState) {
	h.SetBytesKV(strRateLimitPolicy, l.policy)
	var buf [96]byte
	b := append(buf[:0], l.name...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, st.remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, st.reset, 10)
	h.SetBytesKV(strRateLimit, b)
}

func ceilSeconds(ns int64) int64 {
	return (ns + int64(time.Second) - 1) / int64(time.Second)
}

// sessionBucket is the per-session limit of a WebSocket (websocket.rate_limit): one bucket per session.
type sessionBucket struct {
	mu                 sync.Mutex
	interval, tau, tat int64
	base               time.Time
	rejected           *metrics.Counter // nil without metrics
}

// sessionLimit is the compiled websocket.rate_limit of a route (nil: none).
type sessionLimit struct {
	interval, tau int64
	rejected      *metrics.Counter
}

// msgSessionRateLimited is the reason given when a session goes over websocket.rate_limit.
const msgSessionRateLimited = "rsgate: rate limit exceeded"

func newSessionLimit(c *mapping.RateLimitConfig, route string, set *metrics.Set) *sessionLimit {
	if c == nil {
		return nil
	}
	r := c.ParsedRate()
	if r.Off() {
		return nil
	}
	iv := max(1, int64(r.Interval()))
	l := &sessionLimit{interval: iv, tau: int64(c.EffectiveBurst()) * iv}
	if set != nil {
		l.rejected = set.GetOrCreateCounter(`rsgate_ws_rate_limited_total{route="` + route + `"}`)
	}
	return l
}

// bucket returns a full bucket for a new session (nil for a nil limit).
func (s *sessionLimit) bucket() *sessionBucket {
	if s == nil {
		return nil
	}
	return &sessionBucket{interval: s.interval, tau: s.tau, base: time.Now(), rejected: s.rejected}
}

// allow charges one message or request; a nil bucket allows everything.
func (b *sessionBucket) allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	ok, _, _, _ := gcra(&b.tat, int64(time.Since(b.base)), b.interval, b.tau)
	b.mu.Unlock()
	if !ok && b.rejected != nil {
		b.rejected.Inc()
	}
	return ok
}

// rateLimited ends a request-channel session that went over websocket.rate_limit: close 1008 (policy
// violation; dropping messages would silently corrupt the channel), then the backend stream is canceled
// as the session finishes.
func (c *wsChannel) rateLimited() {
	c.close(websocket.ClosePolicyViolation, msgSessionRateLimited)
	c.drainUntilClosed()
}
