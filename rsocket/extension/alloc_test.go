//go:build !race

package extension

import "testing"

// The gateway's hot path: build the request metadata into a pooled buffer, and read routing from incoming
// metadata. None of it may allocate.

func TestAllocsBuildComposite(t *testing.T) {
	buf := make([]byte, 0, 512)
	tag := []byte("users.42")
	token := []byte("eyJhbGciOiJIUzI1NiJ9.e30.signature")
	if n := testing.AllocsPerRun(1000, func() {
		b, err := AppendCompositeRoute(buf[:0], tag)
		if err != nil {
			t.Fatal(err)
		}
		b, err = AppendCompositeBearer(b, token)
		if err != nil {
			t.Fatal(err)
		}
		sinkBytes = b
	}); n != 0 {
		t.Errorf("AppendCompositeRoute+Bearer: %v allocs/op", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		b := AppendCompositeHeader(buf[:0], MimeRouting, 1+len(tag))
		b = AppendRoutingTag(b, tag)
		b = AppendCompositeHeader(b, MimeAuth, 1+len(token))
		b = AppendAuthBearer(b, token)
		b, mark := BeginCompositeEntry(b, "message/x.rsgate.http.v0")
		b = append(b, 1, 1)
		b, _ = EndCompositeEntry(b, mark)
		b, mark = BeginRoutingTag(b)
		b = append(b, "ticks.5"...)
		b, _ = EndRoutingTag(b, mark)
		sinkBytes = b
	}); n != 0 {
		t.Errorf("AppendCompositeHeader/Begin/End: %v allocs/op", n)
	}
}

func TestAllocsDecode(t *testing.T) {
	md := []byte(compositeGolden[3].wire)
	if n := testing.AllocsPerRun(1000, func() {
		it := NewCompositeIter(md)
		c := 0
		for it.Next() {
			c += len(it.Entry().Value)
		}
		sinkInt = c
	}); n != 0 {
		t.Errorf("CompositeIter: %v allocs/op", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		r, ok := FindComposite(md, MimeRouting)
		tag, err := FirstRoutingTag(r)
		sinkBytes, sinkBool = tag, ok && err == nil
	}); n != 0 {
		t.Errorf("FindComposite+FirstRoutingTag: %v allocs/op", n)
	}
	if !sinkBool || string(sinkBytes) != "users.42" {
		t.Fatalf("FirstRoutingTag = %q", sinkBytes)
	}
	accept := []byte("\x85\x09text/x-foo\xfe")
	mt := []byte("\x09text/x-foo")
	auth := []byte("\x80\x00\x04userpass")
	if n := testing.AllocsPerRun(1000, func() {
		it := NewMimeIter(accept)
		for it.Next() {
			sinkBool = it.Mime().Is("text/x-foo")
		}
		m, _ := ParseMimeTypeRef(mt)
		sinkBool = m.Is("text/x-foo")
		a, _ := ParseAuth(auth)
		u, _, _ := a.Simple()
		sinkBytes = u
		_, sinkBool = MimeIDBytes(mt[1:])
		_, sinkBool = MimeID(MimeRouting)
	}); n != 0 {
		t.Errorf("MimeIter/ParseMimeTypeRef/ParseAuth/MimeID: %v allocs/op", n)
	}
}

func TestAllocsZipkin(t *testing.T) {
	tp := []byte(w3cExample)
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(1000, func() {
		z, ok := ZipkinFromTraceparent(tp)
		b := AppendZipkin(buf[:0], &z)
		z2, err := ParseZipkin(b)
		b, ok2 := AppendTraceparent(b[:0], &z2)
		sinkBytes, sinkBool = b, ok && ok2 && err == nil
	}); n != 0 {
		t.Errorf("zipkin/traceparent: %v allocs/op", n)
	}
}
