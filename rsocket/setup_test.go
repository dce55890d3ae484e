package rsocket

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rsgate/rsgate/rsocket/frame"
	"github.com/rsgate/rsgate/rsocket/transport"
)

// acceptRaw runs Accept against a raw client that sends first, and returns the frames the raw client saw
// before the connection closed and Accept's error.
func acceptRaw(t *testing.T, first []byte, opts ServerOptions, acc Acceptor) ([]frame.Frame, error) {
	t.Helper()
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	if first != nil {
		p.send(first)
	}
	if acc == nil {
		acc = func(*SetupInfo, *Conn) (Handler, error) { return nil, nil }
	}
	c, err := Accept(context.Background(), b, opts, acc)
	if err == nil {
		_ = c.Close()
		t.Fatal("Accept succeeded")
	}
	return p.closed(), err
}

func TestSetupRejections(t *testing.T) {
	okSetup := setupFrame(false, nil, nil)
	badVersion := append([]byte(nil), okSetup...)
	badVersion[7] = 2 // major version 2
	resumeSetup := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 1000, Lifetime: 1000,
		Token: []byte("tok"), MetadataMIME: "a", DataMIME: "b"}, nil, nil)
	zeroKeepalive := frame.AppendSetup(nil, &frame.Setup{Major: 1, Keepalive: 0, Lifetime: 1000,
		MetadataMIME: "a", DataMIME: "b"}, nil, nil)
	for _, tc := range []struct {
		name  string
		first []byte
		acc   Acceptor
		code  frame.ErrorCode
		msg   string
	}{
		{"request first", frame.AppendRequestResponse(nil, 1, false, nil, []byte("x")), nil, frame.CodeInvalidSetup, ""},
		{"resume", frame.AppendResume(nil, 1, 0, []byte("tok"), 0, 0), nil, frame.CodeRejectedResume, ""},
		{"version 2", badVersion, nil, frame.CodeUnsupportedSetup, ""},
		{"resume flag", resumeSetup, nil, frame.CodeRejectedSetup, ""},
		{"truncated", okSetup[:10], nil, frame.CodeInvalidSetup, ""},
		{"zero keepalive", zeroKeepalive, nil, frame.CodeInvalidSetup, ""},
		{"acceptor error", okSetup, func(*SetupInfo, *Conn) (Handler, error) {
			return nil, errors.New("go away")
		}, frame.CodeRejectedSetup, "go away"},
		{"acceptor code", okSetup, func(*SetupInfo, *Conn) (Handler, error) {
			return nil, &Error{Code: frame.CodeUnsupportedSetup, Message: "mime"}
		}, frame.CodeUnsupportedSetup, "mime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			frames, err := acceptRaw(t, tc.first, ServerOptions{}, tc.acc)
			e := mustCode(t, err, tc.code)
			if len(frames) != 1 || frames[0].Type() != frame.TypeError || frames[0].StreamID() != 0 ||
				frames[0].ErrorCode() != tc.code {
				t.Fatalf("wire: %v, want one ERROR[%v] on stream 0", frames, tc.code)
			}
			if tc.msg != "" && (e.Message != tc.msg || string(frames[0].ErrorMessage()) != tc.msg) {
				t.Fatalf("message %q / %q, want %q", e.Message, frames[0].ErrorMessage(), tc.msg)
			}
		})
	}
}

func TestSetupTimeout(t *testing.T) {
	leakCheck(t)
	start := time.Now()
	frames, err := acceptRaw(t, nil, ServerOptions{SetupTimeout: 50 * time.Millisecond}, nil)
	mustErrIs(t, err, ErrSetupTimeout)
	if len(frames) != 0 {
		t.Fatalf("frames %v", frames)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("timeout after %v", d)
	}
}

func TestSetupInfoAndSecondSetupIgnored(t *testing.T) {
	leakCheck(t)
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	p.send(setupFrame(false, []byte("smd"), []byte("sdata")))
	var info *SetupInfo
	c, err := Accept(context.Background(), b, ServerOptions{}, func(si *SetupInfo, _ *Conn) (Handler, error) {
		info = si
		return echoHandler(), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if info.Major != 1 || info.Keepalive != time.Minute || info.MaxLifetime != 2*time.Minute ||
		info.MetadataMIME != "text/plain" || info.DataMIME != "text/plain" || info.Lease ||
		string(info.Payload.Metadata) != "smd" || string(info.Payload.Data) != "sdata" {
		t.Fatalf("setup info %+v", info)
	}
	p.send(setupFrame(false, nil, nil)) // "MUST ignore a SETUP frame after it has accepted a previous SETUP"
	p.send(frame.AppendRequestResponse(nil, 1, false, nil, []byte("still works")))
	f := p.expect(frame.TypePayload, 1)
	if string(f.Data()) != "still works" || !f.Has(frame.FlagNext|frame.FlagComplete) {
		t.Fatalf("answer %v", f)
	}
}

// The client side: ERROR[REJECTED_SETUP] before establishment closes the connection with the *Error;
// after establishment, setup errors are ignored.
func TestClientSetupRejected(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	p.send(frame.AppendError(nil, 0, frame.CodeRejectedSetup, "nope"))
	waitDone(t, c.Done(), "client")
	mustErrIs(t, c.Err(), ErrClosed)
	e := mustCode(t, c.Err(), frame.CodeRejectedSetup)
	if e.Message != "nope" {
		t.Fatalf("message %q", e.Message)
	}
	_, _, err := c.RequestResponse(context.Background(), Payload{})
	mustErrIs(t, err, ErrClosed)
}

func TestClientSetupErrorIgnoredAfterEstablishment(t *testing.T) {
	leakCheck(t)
	p, c := rawServer(t, Options{})
	p.send(frame.AppendKeepalive(nil, false, 0, nil)) // any non-ERROR frame establishes
	p.send(frame.AppendError(nil, 0, frame.CodeRejectedSetup, "late"))
	done := make(chan *Message, 1)
	go func() {
		m, _, err := c.RequestResponse(context.Background(), Payload{Data: []byte("q")})
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	f := p.expect(frame.TypeRequestResponse, 1)
	p.send(frame.AppendPayload(nil, f.StreamID(), frame.FlagNext|frame.FlagComplete, nil, []byte("a")))
	m := <-done
	if m == nil || string(m.Data) != "a" {
		t.Fatal("no answer")
	}
	m.Release()
}

func TestConnectSendsSetup(t *testing.T) {
	leakCheck(t)
	a, b := transport.Pipe()
	p := newRawPeer(t, a)
	c, err := Connect(context.Background(), b, Options{
		KeepaliveInterval: 3 * time.Second, MaxLifetime: 7 * time.Second, Lease: true,
		MetadataMIME: "m/m", DataMIME: "d/d", SetupPayload: Payload{Metadata: []byte("md"), Data: []byte("d")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := p.expect(frame.TypeSetup, 0)
	maj, min := f.SetupVersion()
	if maj != 1 || min != 0 || f.SetupKeepalive() != 3000 || f.SetupLifetime() != 7000 || !f.Has(frame.FlagLease) ||
		f.Has(frame.FlagResume) || string(f.SetupMetadataMIME()) != "m/m" || string(f.SetupDataMIME()) != "d/d" ||
		string(f.Metadata()) != "md" || string(f.Data()) != "d" {
		t.Fatalf("SETUP %v", f)
	}
	if _, err := Connect(context.Background(), b, Options{MTU: 10}); err == nil {
		t.Fatal("MTU 10 accepted")
	}
}
