package main

import (
	"runtime"
	"sync"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// Contention profiles on demand. The mutex and block profiles record nothing unless their rates are set, and
// setting them for good costs every lock and channel operation a little. So the rates stay 0, and a request
// for a delta profile (GET /debug/pprof/mutex?seconds=N or /debug/pprof/block?seconds=N) turns them on for
// its N seconds and off again: an operator (or bench/profile.sh) sees where goroutines wait on locks and
// channels under real load without a restart and without a standing cost.
const (
	mutexProfileFraction = 10     // one contention event in 10 is sampled
	blockProfileRate     = 10_000 // one blocking event per 10 µs blocked is sampled
)

var contentionProfiles sync.Mutex // one timed contention profile at a time (the rates are process-wide)

func servePprof(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	timed := len(ctx.QueryArgs().Peek("seconds")) > 0
	if timed && (path == "/debug/pprof/mutex" || path == "/debug/pprof/block") {
		if !contentionProfiles.TryLock() {
			ctx.SetStatusCode(fasthttp.StatusConflict)
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.WriteString("another contention profile is being taken\n")
			return
		}
		defer contentionProfiles.Unlock()
		if path == "/debug/pprof/mutex" {
			prev := runtime.SetMutexProfileFraction(mutexProfileFraction)
			defer runtime.SetMutexProfileFraction(prev)
		} else {
			runtime.SetBlockProfileRate(blockProfileRate)
			defer runtime.SetBlockProfileRate(0)
		}
	}
	pprofhandler.PprofHandler(ctx)
}
