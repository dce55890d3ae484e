// Package rawio reads and writes non-blocking sockets with raw system calls.
//
// The Go runtime tells its scheduler about every ordinary system call (entersyscall/exitsyscall), so that
// a call that blocks gives its P to another thread. Calls on a non-blocking socket never block, and that
// bookkeeping is not free: besides its own cost it wakes the runtime's monitor thread (sysmon) from its
// deep sleep whenever a process that was idle makes its first call, and sysmon then polls every 20 µs for
// a while. For a proxy whose single P goes idle and busy thousands of times a second, that is thousands of
// extra thread switches per second: several percent of its CPU on a virtual machine, where switches are
// dear. On Linux these functions use syscall.RawSyscall, which skips the bookkeeping; elsewhere they are
// the ordinary calls.
//
// Use them only on file descriptors in non-blocking mode (every socket of the net package is), from a
// syscall.RawConn's Read or Write callback, which also handles waiting for readiness and deadlines.
package rawio
