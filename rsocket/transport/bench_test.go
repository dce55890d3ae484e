package transport

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// benchFrames measures frames/s over loopback TCP: one goroutine queues batch frames of size
// bytes and flushes, another reads them.
func benchFrames(b *testing.B, size, batch int) {
	client, server := loopbackPair(b, Options{})
	head := make([]byte, 6)
	data := make([]byte, size-len(head))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := b.N
	done := readFrames(server, n)
	b.ResetTimer()
	for i := 0; i < n; {
		k := min(batch, n-i)
		for range k {
			if err := client.WriteFrame(head, nil, data); err != nil {
				b.Fatal(err)
			}
		}
		if err := client.Flush(); err != nil {
			b.Fatal(err)
		}
		i += k
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkTCP1KiBBatch1(b *testing.B)  { benchFrames(b, 1<<10, 1) }
func BenchmarkTCP1KiBBatch64(b *testing.B) { benchFrames(b, 1<<10, 64) }
func BenchmarkTCP64BBatch64(b *testing.B)  { benchFrames(b, 64, 64) }

// BenchmarkStdBufio1KiBBatch64 is the standard alternative for comparison: bufio.Writer with a
// copied prefix and body, bufio.Reader with io.ReadFull into a reused buffer.
func BenchmarkStdBufio1KiBBatch64(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	sc := <-acc
	if sc == nil {
		b.Fatal("accept failed")
	}
	defer sc.Close()
	const size, batch = 1 << 10, 64
	frame := make([]byte, size)
	b.SetBytes(size)
	b.ReportAllocs()
	n := b.N
	done := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(sc, 32<<10)
		buf := make([]byte, size)
		var p [3]byte
		for range n {
			if _, err := io.ReadFull(br, p[:]); err != nil {
				done <- err
				return
			}
			l := int(p[0])<<16 | int(p[1])<<8 | int(p[2])
			if _, err := io.ReadFull(br, buf[:l]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	bw := bufio.NewWriterSize(cc, 64<<10)
	b.ResetTimer()
	for i := 0; i < n; {
		k := min(batch, n-i)
		for range k {
			var p [4]byte
			binary.BigEndian.PutUint32(p[:], size)
			bw.Write(p[1:])
			bw.Write(frame)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		i += k
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
