// Package peers holds the two RSocket responders of the interop suite — one built on rsgate's rsocket
// package, one on rsocket-go v0.8.12 — with the same routes, so that every test can run against either.
//
// Routes (first routing tag of composite metadata, `message/x.rsocket.routing.v0`):
//
//	echo        request-response: answers with the request data (no metadata)
//	fail        request-response: APPLICATION_ERROR "fail: <request data>"
//	fnf         fire-and-forget: the data is reported on Observations.FNF
//	stream.{n}  request-stream: n items "item-0" ... "item-{n-1}", then complete
//	infinite    request-stream: items until cancelled; the cancel is reported on Observations.Cancels
//	mdsum       request-response: answers "<metadata length>:<sha256 hex of the metadata>"
//	slow        request-response: never answers; the requester's cancel is reported on Cancels
//	big         request-response: answers BigSize bytes, more than a default 16 MiB reassembly limit
//	streamfail.{n}   request-stream: n items, then APPLICATION_ERROR StreamFailMessage(n)
//	blob.{n}.{size}  request-stream: n items of size bytes each (Blob(i, size)), then complete
//	channel     request-channel: echoes every inbound element (the REQUEST_CHANNEL payload first) as
//	            "echo:<data>", completes when the requester completes
//
// Metadata push: the metadata is reported on Observations.MetadataPush. Any other route: APPLICATION_ERROR
// "no route: <tag>".
package peers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Setup is what a responder saw in the client's SETUP frame.
type Setup struct {
	MetadataMIME, DataMIME string
	Data                   string
}

// Observations are the side effects a responder reports to the test. Channels are buffered and written
// without blocking (a full channel drops, so a test never deadlocks a connection's reader).
type Observations struct {
	Setups       chan Setup
	FNF          chan string
	MetadataPush chan string
	Cancels      chan string // route of a request-stream that the requester cancelled
	Errors       chan string // responder-side problems (bad metadata, unexpected frames), for diagnostics
}

// NewObservations returns Observations with generously buffered channels.
func NewObservations() *Observations {
	return &Observations{
		Setups:       make(chan Setup, 16),
		FNF:          make(chan string, 4096),
		MetadataPush: make(chan string, 1024),
		Cancels:      make(chan string, 64),
		Errors:       make(chan string, 1024),
	}
}

func offer[T any](ch chan T, v T) {
	if ch == nil {
		return
	}
	select {
	case ch <- v:
	default:
	}
}

// StreamCount parses "stream.{n}".
func StreamCount(route string) (int, bool) {
	rest, ok := strings.CutPrefix(route, "stream.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, false
	}
	return n, true
}

// Item is the data of the i-th item of a stream route.
func Item(i int) string { return fmt.Sprintf("item-%d", i) }

// EchoPrefix is prepended by the channel route to every element it echoes.
const EchoPrefix = "echo:"

// FailMessage is the APPLICATION_ERROR message of the fail route.
func FailMessage(data []byte) string { return "fail: " + string(data) }

// BlobRoute parses "blob.{n}.{size}".
func BlobRoute(route string) (n, size int, ok bool) {
	rest, ok := strings.CutPrefix(route, "blob.")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	size, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 0 || n > 1000 || size < 0 || size > 8<<20 {
		return 0, 0, false
	}
	return n, size, true
}

// Blob is the i-th item of a blob route: size bytes, a pattern that differs per item and per offset.
func Blob(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j%251)
	}
	return b
}

// MetadataSum is the answer of the mdsum route.
func MetadataSum(md []byte) string {
	h := sha256.Sum256(md)
	return fmt.Sprintf("%d:%s", len(md), hex.EncodeToString(h[:]))
}

// StreamFailRoute parses "streamfail.{n}".
func StreamFailRoute(route string) (int, bool) {
	rest, ok := strings.CutPrefix(route, "streamfail.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0 && n <= 1000
}

// StreamFailMessage is the APPLICATION_ERROR message ending a streamfail route.
func StreamFailMessage(n int) string { return fmt.Sprintf("stream failed after %d items", n) }

// BigSize is the answer size of the big route: 20 MiB.
const BigSize = 20 << 20
