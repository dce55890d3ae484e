package mapping

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Rate limits (key "rate_limit" at the top level and per route, "websocket.rate_limit" per WebSocket
// session). A token bucket per key: Burst tokens at most, refilled at Rate; a request takes one token or
// is refused with 429.

// Rate-limit defaults and bounds.
const (
	DefaultRateLimitMaxKeys = 100_000 // rate_limit.max_keys
	MaxRateLimitCount       = 1_000_000_000
	MaxRateLimitBurst       = 1_000_000
	RateLimitOff            = "off" // rate: off turns a limit off (a route opting out of the global one)
)

// Rate-limit keys (the values of rate_limit.key; "header:NAME" names a request header).
const (
	RateKeyIP           = "ip"
	RateKeySubject      = "subject"
	RateKeyHeaderPrefix = "header:"
)

// RateLimitConfig is a "rate_limit" section.
type RateLimitConfig struct {
	// Rate is "N/s", "N/m" or "N/h" (N an integer, 1..1e9), or "off". Key "rate", required.
	Rate string `yaml:"rate"`
	// Burst is the bucket size: how many requests may arrive at once after a quiet period. Key "burst",
	// default N of the rate (100/s: 100); 1..1,000,000.
	Burst int `yaml:"burst"`
	// Key is what a bucket belongs to: ip (the client connection's address), subject (the authenticated
	// subject; without one the verified client certificate's subject (tls.client_ca); ip when the request
	// has neither) or header:NAME (that header's value; ip when absent). Key
	// "key", default ip. Not for websocket.rate_limit (one bucket per session).
	Key string `yaml:"key"`
	// MaxKeys bounds the number of buckets kept; beyond it the least recently used idle bucket is
	// evicted. Key "max_keys", default 100000; 1..10,000,000. Not for websocket.rate_limit.
	MaxKeys int `yaml:"max_keys"`
}

// Rate is a parsed rate: Count tokens per Per.
type Rate struct {
	Count int64
	Per   time.Duration
}

// Off reports whether the rate is "off" (zero).
func (r Rate) Off() bool { return r.Count == 0 }

// Interval is the time one token takes to refill.
func (r Rate) Interval() time.Duration {
	if r.Count == 0 {
		return 0
	}
	return r.Per / time.Duration(r.Count)
}

// String returns the rate as written ("100/s").
func (r Rate) String() string {
	if r.Off() {
		return RateLimitOff
	}
	u := "s"
	switch r.Per {
	case time.Minute:
		u = "m"
	case time.Hour:
		u = "h"
	}
	return strconv.FormatInt(r.Count, 10) + "/" + u
}

// ParseRate parses "N/s", "N/m", "N/h" (also "N/sec", "N/min", "N/hour", "N/second", "N/minute") or
// "off".
func ParseRate(s string) (Rate, error) {
	if s == RateLimitOff {
		return Rate{}, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, errors.New("invalid rate " + strconv.Quote(s) + " (want N/s, N/m or N/h, e.g. \"100/s\", or \"off\")")
	}
	var per time.Duration
	switch unit {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return Rate{}, errors.New("invalid rate " + strconv.Quote(s) + ": unit must be s, m or h")
	}
	if num == "" || len(num) > 10 {
		return Rate{}, errors.New("invalid rate " + strconv.Quote(s) + ": count must be an integer from 1 to 1000000000")
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return Rate{}, errors.New("invalid rate " + strconv.Quote(s) + ": count must be an integer from 1 to 1000000000")
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > MaxRateLimitCount {
		return Rate{}, errors.New("invalid rate " + strconv.Quote(s) + ": count must be an integer from 1 to 1000000000")
	}
	return Rate{Count: n, Per: per}, nil
}

// ParsedRate returns the parsed rate (valid after validation; Off when unparsable).
func (c *RateLimitConfig) ParsedRate() Rate {
	r, _ := ParseRate(c.Rate)
	return r
}

// EffectiveBurst is Burst, or the rate's count when Burst is 0.
func (c *RateLimitConfig) EffectiveBurst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	r := c.ParsedRate()
	return int(min(r.Count, MaxRateLimitBurst))
}

// EffectiveMaxKeys is MaxKeys, or DefaultRateLimitMaxKeys when 0.
func (c *RateLimitConfig) EffectiveMaxKeys() int {
	if c.MaxKeys > 0 {
		return c.MaxKeys
	}
	return DefaultRateLimitMaxKeys
}

// KeyHeader returns NAME for key "header:NAME", else "".
func (c *RateLimitConfig) KeyHeader() string {
	name, _ := strings.CutPrefix(c.Key, RateKeyHeaderPrefix)
	if name == c.Key {
		return ""
	}
	return name
}

// rateLimit validates a rate_limit section; session is true for websocket.rate_limit.
func (v *validator) rateLimit(f string, c *RateLimitConfig, session bool) {
	if c == nil {
		return
	}
	if c.Rate == "" {
		v.add(f+".rate", "required (e.g. \"100/s\", or \"off\")")
	} else if _, err := ParseRate(c.Rate); err != nil {
		v.add(f+".rate", "%s", err.Error())
	}
	if c.Burst < 0 || c.Burst > MaxRateLimitBurst {
		v.add(f+".burst", "must be between 1 and 1000000 (0: the rate's count), got %d", c.Burst)
	}
	if session {
		if c.Key != "" {
			v.add(f+".key", "not used by a per-session limit (each WebSocket session has its own bucket)")
		}
		if c.MaxKeys != 0 {
			v.add(f+".max_keys", "not used by a per-session limit")
		}
		return
	}
	switch {
	case c.Key == "", c.Key == RateKeyIP, c.Key == RateKeySubject:
	case strings.HasPrefix(c.Key, RateKeyHeaderPrefix):
		if name := c.KeyHeader(); !isToken(name) {
			v.add(f+".key", "invalid header name %q in %q", name, c.Key)
		}
	default:
		msg := "invalid key " + strconv.Quote(c.Key) + " (ip, subject or header:NAME)"
		if s := suggest(c.Key, []string{RateKeyIP, RateKeySubject}); s != "" {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		}
		v.add(f+".key", "%s", msg)
	}
	if c.MaxKeys < 0 || c.MaxKeys > 10_000_000 {
		v.add(f+".max_keys", "must be between 1 and 10000000 (0: 100000), got %d", c.MaxKeys)
	}
}
