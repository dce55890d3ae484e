//go:build linux

package transport

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"github.com/rsgate/rsgate/internal/rawio"
)

// rawTCP reads and writes a TCP connection with raw system calls (internal/rawio explains why) through its
// syscall.RawConn, which waits for readiness and keeps the deadlines. One goroutine reads and one writes
// at a time (the streamConn's reader and writer); the connection itself is closed through net.Conn.
type rawTCP struct {
	tc *net.TCPConn
	rc syscall.RawConn

	readFn func(fd uintptr) bool // r.readFD, made once so that a read allocates nothing
	rp     []byte
	rn     int
	rerr   syscall.Errno

	writeFn func(fd uintptr) bool // r.writeFD
	wbufs   [][]byte              // what is left to write; entries are resliced as they go out
	iov     []syscall.Iovec
	wn      int64
	werr    syscall.Errno
}

// newRawTCP returns the raw reader/writer of tc, or nil when tc has no usable RawConn.
func newRawTCP(tc *net.TCPConn) *rawTCP {
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawTCP{tc: tc, rc: rc}
	r.readFn = r.readFD
	r.writeFn = r.writeFD
	return r
}

func (r *rawTCP) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.tc.LocalAddr(), Addr: r.tc.RemoteAddr(), Err: err}
}

// Read implements io.Reader: one read(2), waiting for readability first when nothing is there.
func (r *rawTCP) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp = p
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rp, r.rn, r.rerr = nil, 0, 0
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil {
		return 0, r.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawTCP) readFD(fd uintptr) bool {
	n, errno := rawio.Read(fd, r.rp)
	if errno == syscall.EAGAIN {
		return false
	}
	r.rn, r.rerr = n, errno
	return true
}

// Write implements io.Writer (all of p).
func (r *rawTCP) Write(p []byte) (int, error) {
	n, err := r.writeVec([][]byte{p})
	return int(n), err
}

// maxIovecs is the most iovecs passed to one writev (Linux's IOV_MAX).
const maxIovecs = 1024

// writeVec writes every buffer of bufs in order with writev(2), waiting for writability as needed. It
// reslices the entries of bufs as they go out.
func (r *rawTCP) writeVec(bufs [][]byte) (int64, error) {
	r.wbufs, r.wn, r.werr = bufs, 0, 0
	err := r.rc.Write(r.writeFn)
	n, errno := r.wn, r.werr
	r.wbufs = nil
	clear(r.iov)
	r.iov = r.iov[:0]
	if err == nil && errno != 0 {
		err = os.NewSyscallError("writev", errno)
	}
	if err != nil {
		return n, r.opError("write", err)
	}
	return n, nil
}

func (r *rawTCP) writeFD(fd uintptr) bool {
	for {
		for len(r.wbufs) > 0 && len(r.wbufs[0]) == 0 {
			r.wbufs = r.wbufs[1:]
		}
		if len(r.wbufs) == 0 {
			return true
		}
		r.iov = r.iov[:0]
		for _, b := range r.wbufs {
			if len(b) == 0 {
				continue
			}
			r.iov = append(r.iov, syscall.Iovec{Base: unsafe.SliceData(b)})
			r.iov[len(r.iov)-1].SetLen(len(b))
			if len(r.iov) == maxIovecs {
				break
			}
		}
		n, errno := rawio.Writev(fd, r.iov)
		if errno == syscall.EAGAIN {
			return false
		}
		if errno != 0 {
			r.werr = errno
			return true
		}
		r.wn += int64(n)
		for n > 0 {
			k := min(n, len(r.wbufs[0]))
			r.wbufs[0] = r.wbufs[0][k:]
			n -= k
			if len(r.wbufs[0]) == 0 {
				r.wbufs = r.wbufs[1:]
			}
		}
	}
}
