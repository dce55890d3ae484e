package ingress

import (
	"hash/maphash"
	"net"
	"sync"
)

// connSet is the set of open client connections fasthttp serves (hijacked ones leave it), so that Shutdown
// can close what is left. Every connection is added and removed once, from the goroutine that serves it:
// under connection churn ("Connection: close" clients) a single mutex was the gateway's top lock-contention
// site at 2 cores (bench/profile.sh, connection-rate run). The set is split into connShards maps by a
// hash of the connection.
type connSet struct {
	seed   maphash.Seed
	shards [connShards]connShard
}

const connShards = 16

type connShard struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
	_  [48]byte // one shard per cache line
}

func newConnSet() *connSet {
	s := &connSet{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = map[net.Conn]struct{}{}
	}
	return s
}

func (s *connSet) shard(c net.Conn) *connShard {
	return &s.shards[maphash.Comparable(s.seed, c)%connShards]
}

func (s *connSet) add(c net.Conn) {
	sh := s.shard(c)
	sh.mu.Lock()
	sh.m[c] = struct{}{}
	sh.mu.Unlock()
}

func (s *connSet) remove(c net.Conn) {
	sh := s.shard(c)
	sh.mu.Lock()
	delete(sh.m, c)
	sh.mu.Unlock()
}

func (s *connSet) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// closeAll closes every connection in the set (they leave it through fasthttp's StateClosed).
func (s *connSet) closeAll() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c := range sh.m {
			_ = c.Close()
		}
		sh.mu.Unlock()
	}
}
