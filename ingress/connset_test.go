package ingress

import (
	"net"
	"sync"
	"testing"
	"time"
)

func TestConnSet(t *testing.T) {
	s := newConnSet()
	var conns []net.Conn
	for i := 0; i < 100; i++ {
		a, b := net.Pipe()
		defer b.Close()
		conns = append(conns, a)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); s.add(c) }()
	}
	wg.Wait()
	if n := s.len(); n != 100 {
		t.Fatalf("len %d, want 100", n)
	}
	for _, c := range conns[:40] {
		s.remove(c)
	}
	s.remove(conns[0]) // removing twice is harmless
	if n := s.len(); n != 60 {
		t.Fatalf("len %d after removing 40, want 60", n)
	}
	s.closeAll()
	// A closed net.Pipe end fails SetDeadline with io.ErrClosedPipe; an open one accepts it.
	for _, c := range conns[40:] {
		if c.SetDeadline(time.Time{}) == nil {
			t.Fatal("a connection left open by closeAll")
		}
	}
	if conns[0].SetDeadline(time.Time{}) != nil {
		t.Fatal("closeAll closed a connection that had left the set")
	}
}
