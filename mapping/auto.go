package mapping

import "runtime"

// AutoConnections is what a backend's `connections: auto` (the default) means: one persistent connection per
// address for each P the Go scheduler runs (GOMAXPROCS), and never fewer than DefaultConnections.
//
// Each connection has one reader goroutine that parses and dispatches every frame it carries, and at most one
// writer goroutine that batches frames into one writev. A single connection is therefore bounded by one core
// on each side; with fewer connections than cores the readers become the bottleneck, and with many more they
// stop sharing system calls (each batch gets smaller). On the 2-core machine the benchmarks run on, "auto" is
// 2, the value every earlier measurement used.
func AutoConnections() int {
	return max(DefaultConnections, runtime.GOMAXPROCS(0))
}

// AutoWorkers is what `workers: auto` means: one gateway process per core this process may use (GOMAXPROCS,
// which follows the CPU affinity mask and, since Go 1.25, a container's CPU limit), each then running with
// GOMAXPROCS=1. A Go process with one P hands a request's goroutines to each other without waking another
// thread; bench/results has the measurement behind it.
func AutoWorkers() int {
	return runtime.GOMAXPROCS(0)
}
