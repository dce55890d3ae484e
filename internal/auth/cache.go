package auth

import (
	"hash/maphash"
	"sync"
	"time"
)

// tokenCache remembers verified tokens until they expire, so that a token presented again is not parsed
// and verified again. It is keyed by a seeded hash of the token and stores the token itself: a hit needs
// the whole token to be equal, so hash collisions cannot let another token in. It holds at most max
// entries; when full, an arbitrary entry is evicted (expired ones first, when found). Entries carry the
// key-set generation they were verified with, and clear drops them all when the set changes.
type tokenCache struct {
	seed maphash.Seed
	max  int
	mu   sync.RWMutex
	m    map[uint64]*cacheEntry
}

type cacheEntry struct {
	token string
	id    *Identity
	until time.Time // exp + leeway
	gen   uint64
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{seed: maphash.MakeSeed(), max: max, m: make(map[uint64]*cacheEntry, min(max, 1024))}
}

// get returns the identity of a cached token still valid at now and verified with key-set generation gen.
// It does not allocate.
func (c *tokenCache) get(token []byte, gen uint64, now time.Time) *Identity {
	h := maphash.Bytes(c.seed, token)
	c.mu.RLock()
	e := c.m[h]
	c.mu.RUnlock()
	if e == nil || e.gen != gen || e.token != string(token) || !now.Before(e.until) {
		return nil
	}
	return e.id
}

func (c *tokenCache) put(token []byte, id *Identity, until time.Time, gen uint64) {
	h := maphash.Bytes(c.seed, token)
	e := &cacheEntry{token: string(token), id: id, until: until, gen: gen}
	now := time.Now()
	c.mu.Lock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.max {
		n := 0
		for k, old := range c.m { // random start: evicts an arbitrary entry, or expired ones seen first
			if n > 0 && now.Before(old.until) {
				break
			}
			delete(c.m, k)
			n++
			if n >= 8 {
				break
			}
		}
	}
	c.m[h] = e
	c.mu.Unlock()
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
