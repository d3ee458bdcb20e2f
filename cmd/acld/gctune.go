package main

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// A soft memory limit that follows the live heap.
//
// With GOGC=100 alone the collector lets the heap grow to twice what the last collection
// found live, and the runtime keeps about 10 % above that goal mapped. Under writes at 10^5
// records acld's live heap is 250-350 MB (nats-server's duplicate-window ids and subject
// trees, acld's caches), so its Go heap reached 600-700 MB and RSS 940 MB with it, although
// half of it was garbage awaiting a collection (README, Round 12: memory). A fixed
// --memory-limit cannot be set right for every data size: below the live heap the collector
// runs without pause (round 11: 7x the CPU per command), above it binds only at peaks.
//
// So after every collection acld sets the limit to what the runtime then holds for the live
// heap (the live objects, the free slots of their spans, stacks and the runtime's own
// structures) plus a headroom of gcHeadroom percent of the live heap, at least
// gcHeadroomMin. GOGC stays: where it is tighter (a small heap) it decides. The limit
// follows the live heap up as well as down, so it never falls below what is live, and the
// collector's own bound of its CPU under a limit (at most half of the CPU) still holds.
// The price is more collections under writes: about 100/headroom times as many.

// gcHeadroomMin is the least headroom above the live heap, so that a small heap (an idle
// server, tests) is not collected for every few MB allocated.
const gcHeadroomMin = 32 << 20

// gcMetrics are read after every collection.
var gcMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
}

// gcLimit is the soft limit for a live heap of live bytes, when the runtime holds held bytes
// in all (total less released, what the limit is compared with), of which free are free
// pages and objects are the heap's objects, live or not yet swept.
func gcLimit(live, held, free, objects uint64, headroomPct int) int64 {
	overhead := int64(held) - int64(free) - int64(objects) // free slots of spans, stacks, runtime
	if overhead < 0 {
		overhead = 0
	}
	room := live * uint64(headroomPct) / 100
	if room < gcHeadroomMin {
		room = gcHeadroomMin
	}
	limit := overhead + int64(live) + int64(room)
	if limit <= 0 {
		return math.MaxInt64
	}
	return limit
}

// tuneGC sets the soft memory limit after every collection from then on, until stop is
// called, which puts the limit back as it was. headroomPct <= 0 leaves the runtime alone.
func tuneGC(headroomPct int, logger *slog.Logger) (stop func()) {
	if headroomPct <= 0 {
		return func() {}
	}
	samples := make([]metrics.Sample, len(gcMetrics))
	for i, name := range gcMetrics {
		samples[i].Name = name
	}
	before := debug.SetMemoryLimit(-1)
	var mu sync.Mutex // stopped, and one cleanup at a time against stop
	stopped := false
	var arm func()
	after := func(int) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		metrics.Read(samples)
		v := func(i int) uint64 { return samples[i].Value.Uint64() }
		limit := gcLimit(v(0), v(1)-v(2), v(3), v(4), headroomPct)
		debug.SetMemoryLimit(limit)
		logger.Debug("gc: memory limit", "live_mb", v(0)>>20, "limit_mb", limit>>20)
		arm()
	}
	// A cleanup runs once the collector has found its object unreachable, that is after the
	// next collection for an object allocated and dropped now; it runs on a goroutine of its own.
	arm = func() {
		sentinel := new([64]byte) // not tiny-allocated: those share a block and may never be collected
		runtime.AddCleanup(sentinel, after, 0)
	}
	arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		debug.SetMemoryLimit(before)
	}
}
