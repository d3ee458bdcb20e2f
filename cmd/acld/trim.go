package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Returning memory when idle.
//
// After a burst of commands (an import, a batch job) most of acld's resident memory is no
// longer in use, but neither the Go runtime nor nats-server gives it back soon:
//   - the runtime keeps freed heap for reuse and returns it slowly (the scavenger);
//   - nats-server keeps each 8 MB message block it loaded while checking an append's
//     expected last subject sequence: weakly held after use, but a freed block's buffer goes
//     to a pool through a cleanup (runtime.AddCleanup) and the pool keeps it for two more
//     collections. With the program idle, collections are minutes apart (the runtime forces
//     one every two minutes), so those buffers stay.
//
// Measured at the compare shape (README, round 6): 1.0 GB resident 30 s after an import,
// against a live heap of a few hundred MB. So once a tick has passed with almost no
// allocation, acld collects and returns what is free (debug.FreeOSMemory), once per tick
// until the three collections that free a block buffer have run, then not again until the
// next busy tick. A busy server never pays for it; an idle one pays three collections per
// idle period.

// trimAllocBytes is the most a tick may allocate and count as idle: a few checks or commands
// per second allocate far less; an import or a load test far more.
const trimAllocBytes = 32 << 20

// trimsPerIdle is how many collections free a nats-server block buffer no longer used: the
// first frees its cache and runs the cleanup that pools the buffer, the second moves the pool
// to its victim cache, the third frees it.
const trimsPerIdle = 3

// idleTrim decides, tick by tick, whether to return memory now.
type idleTrim struct {
	allocs uint64 // cumulative bytes allocated at the last tick
	trims  int    // trims done since the last busy tick
}

// tick takes the cumulative bytes allocated so far and answers whether to trim now.
func (t *idleTrim) tick(allocs uint64) bool {
	busy := allocs-t.allocs > trimAllocBytes
	t.allocs = allocs
	if busy {
		t.trims = 0
		return false
	}
	if t.trims >= trimsPerIdle {
		return false
	}
	t.trims++
	return true
}

// trimWhenIdle runs idleTrim every tick until ctx ends.
func trimWhenIdle(ctx context.Context, every time.Duration, logger *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	t := idleTrim{allocs: read()}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if !t.tick(read()) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		t.allocs = read() // what the collection itself allocated does not make the next tick busy
		logger.Debug("idle: returned free memory to the system", "took", time.Since(start), "round", t.trims)
	}
}
