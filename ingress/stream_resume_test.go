package ingress

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/rsgate/rsgate/internal/demo"
	"github.com/rsgate/rsgate/mapping"
)

// TestParseEventID: golden cases of the Last-Event-ID parser.
func TestParseEventID(t *testing.T) {
	const sid = "00112233445566778899aabbccddeeff"
	for _, tt := range []struct {
		in  string
		ok  bool
		seq uint64
	}{
		{sid + "-1", true, 1},
		{sid + "-0", true, 0},
		{sid + "-18446744073709551615", true, 1<<64 - 1},
		{"00112233445566778899AABBCCDDEEFF-7", true, 7}, // hex is case-insensitive
		{sid + "-18446744073709551616", false, 0},       // overflows uint64
		{sid + "-", false, 0},
		{sid + "-x", false, 0},
		{sid + "--1", false, 0},
		{sid + "-+1", false, 0},
		{sid + "1", false, 0},
		{sid[:31] + "-1", false, 0},
		{"g0112233445566778899aabbccddeeff-1", false, 0},
		{"42", false, 0},
		{"", false, 0},
	} {
		id, seq, ok := parseEventID([]byte(tt.in))
		if ok != tt.ok || seq != tt.seq {
			t.Errorf("parseEventID(%q) = %d, %v; want %d, %v", tt.in, seq, ok, tt.seq, tt.ok)
		}
		if ok && hex.EncodeToString(id[:]) != strings.ToLower(tt.in[:32]) {
			t.Errorf("parseEventID(%q) id %x", tt.in, id)
		}
	}
}

// FuzzParseEventID: the parser never panics, and what it accepts written back in the gateway's form
// parses to the same session and sequence number.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"00112233445566778899aabbccddeeff-1", "00112233445566778899aabbccddeeff-18446744073709551615",
		"42", "", "00112233445566778899aabbccddeeff-", "zz112233445566778899aabbccddeeff-3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, seq, ok := parseEventID(b)
		if !ok {
			return
		}
		canon := hex.EncodeToString(id[:]) + "-" + strconv.FormatUint(seq, 10)
		id2, seq2, ok2 := parseEventID([]byte(canon))
		if !ok2 || id2 != id || seq2 != seq {
			t.Fatalf("%q parsed as %x-%d, its canonical form %q as %x-%d (%v)", b, id, seq, canon, id2, seq2, ok2)
		}
	})
}

// TestReplayRing: the ring grows to maxReplay items, keeps the newest items within replayBytes (always the
// newest one), and returns what it drops to the pool.
func TestReplayRing(t *testing.T) {
	r := &resumable{}
	item := func(i, size int) *bytebufferpool.ByteBuffer {
		b := []byte(strconv.Itoa(i) + ":")
		return &bytebufferpool.ByteBuffer{B: append(b, strings.Repeat("x", size)...)}
	}
	check := func(first, last int) {
		t.Helper()
		if r.n != last-first+1 {
			t.Fatalf("n = %d, want items %d..%d", r.n, first, last)
		}
		total := 0
		for i := 0; i < r.n; i++ {
			if got, _, _ := strings.Cut(string(r.at(i).B), ":"); got != strconv.Itoa(first+i) {
				t.Fatalf("item %d of the ring is %s, want %d", i, got, first+i)
			}
			total += len(r.at(i).B)
		}
		if total != r.bytes {
			t.Fatalf("bytes %d, counted %d", r.bytes, total)
		}
	}
	for i := 0; i < 3000; i++ { // small items: the count cap
		r.keep([]*bytebufferpool.ByteBuffer{item(i, 10)})
	}
	check(3000-maxReplay, 2999)
	if len(r.ring) != maxReplay {
		t.Fatalf("ring grew to %d", len(r.ring))
	}
	r.drop()
	check(0, -1)
	for i := 0; i < 20; i++ { // 10 KiB items: the byte budget keeps the last 6
		r.keep([]*bytebufferpool.ByteBuffer{item(i, 10<<10)})
	}
	check(14, 19)
	r.keep([]*bytebufferpool.ByteBuffer{item(20, replayBytes*2)}) // larger than the budget: kept alone
	check(20, 20)
	r.drop()
	r.window = 8 // the window's worth is kept whatever the size
	for i := 0; i < 20; i++ {
		r.keep([]*bytebufferpool.ByteBuffer{item(i, 10<<10)})
	}
	check(12, 19)
	r.drop()
	for _, bb := range r.ring {
		if bb != nil {
			t.Fatal("drop left an item in the ring")
		}
	}
}

// TestWriteItemsSessionIDs: resumable SSE events carry "<session>-<seq>" ids from base+1.
func TestWriteItemsSessionIDs(t *testing.T) {
	sr := &streamer{format: formatSSE, rs: &resumable{}}
	copy(sr.rs.hex[:], "00112233445566778899aabbccddeeff")
	var out strings.Builder
	w := bufio.NewWriter(&out)
	items := []*bytebufferpool.ByteBuffer{{B: []byte(`{"a":1}`)}, {B: []byte("x\ny")}}
	if k, err := sr.writeItems(w, items, 41, nil); k != 2 || err != nil {
		t.Fatalf("writeItems: %d, %v", k, err)
	}
	_ = w.Flush()
	want := "id: 00112233445566778899aabbccddeeff-42\ndata: {\"a\":1}\n\n" +
		"id: 00112233445566778899aabbccddeeff-43\ndata: x\ndata: y\n\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
	if sr.bytes != len(want) {
		t.Fatalf("bytes %d, want %d", sr.bytes, len(want))
	}
	// A call that ended stops the batch before the next item.
	done := make(chan struct{})
	close(done)
	if k, err := sr.writeItems(bufio.NewWriter(io.Discard), items, 0, done); k != 0 || err != errCallEnded {
		t.Fatalf("writeItems after done: %d, %v", k, err)
	}
}

// BenchmarkStreamSSE: SSE items per second through a request-stream route (demo ticks, window 64, over
// TCP to a real socket), with SSE resumption on (session ids, replay ring) and off.
func BenchmarkStreamSSE(b *testing.B) {
	for _, tc := range []struct {
		name   string
		resume time.Duration
	}{{"resume", 30 * time.Second}, {"plain", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := demo.Serve("127.0.0.1:0", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			cfg := newConfig(map[string]string{"demo": d.Addr().String()}, []routeSpec{
				{name: "ticks", path: "/ticks/{n}", backend: "demo", interaction: mapping.InteractionRequestStream, tag: "ticks.{n}",
					mutate: func(r *mapping.Route) { r.Stream.ResumeWindow = mapping.Duration(tc.resume) }},
			})
			g := startGatewayB(b, cfg, Options{})
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := io.WriteString(c, "GET /ticks/"+strconv.Itoa(b.N)+" HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
				b.Fatal(err)
			}
			hr := bufio.NewReaderSize(c, 64<<10)
			for { // status line and headers
				l, err := hr.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if len(l) == 2 {
					break
				}
			}
			br := bufio.NewReaderSize(httputil.NewChunkedReader(hr), 64<<10)
			events := 0
			for events < b.N {
				l, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatalf("after %d events: %v", events, err)
				}
				if bytes.HasPrefix(l, []byte("data: ")) {
					events++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
