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
// allocation, acld collects and returns what is free (debug.FreeOSMemory, and the C heap's
// free pages, where Pebble allocates: trimCHeap), once per tick for trimsPerIdle ticks, then
// not again until the next busy tick. A busy server never pays
// for it; an idle one pays a few collections per idle period.

// trimAllocBytes is the most a tick may allocate and count as idle: a few checks or commands
// per second allocate far less; an import or a load test far more.
const trimAllocBytes = 32 << 20

// dropAllocBytes is the most a tick may allocate and count as quiet, for the drop of the
// caches (dropCaches): idle for the trims allows a steady trickle of queries (a few MB a tick
// is a hundred checks a second), whose caches are worth keeping; the drop waits for a server
// that has next to nothing to answer.
const dropAllocBytes = 8 << 20

// trimsPerIdle is how many ticks in a row an idle acld collects. A nats-server block buffer
// no longer used is freed in steps: its block's cache expires 10 s after the last access
// (nats-server's defaultCacheBufferExpiration; a collection before that may already free a
// cache held only weakly, whose cleanup pools the buffer), the buffer goes to a sync.Pool, a
// collection moves the pool to its victim cache and the next frees it. So the collections
// must go on past 10 s after the last access, and then twice: with three (measured at the
// compare shape) 112 MB of buffers were still held 40 s after the workloads ended.
const trimsPerIdle = 6

// idleTrim decides, tick by tick, whether to return memory now.
type idleTrim struct {
	allocs uint64 // cumulative bytes allocated at the last tick
	trims  int    // trims done since the last busy tick
	idle   int    // ticks since the last busy tick
	late   int    // the idle tick at which to trim once more (lateTrim); 0: never
	drop   int    // the quiet tick at which to drop acld's caches and trim (dropCaches); 0: never
	quiet  int    // ticks since the last one that allocated more than dropAllocBytes
}

// lateTrim is how long into an idle period acld trims once more. nats-server drops what a
// burst of writes left 2 minutes after its last use: the blocks' per-subject state
// (defaultFssExpiration), the message ids of the duplicate window (events.DefaultDuplicateWindow)
// and the change feed's stored messages (its MaxAge). The objects are garbage then, but an
// idle program collects only every 2 minutes and returns freed pages slowly. Measured at the
// compare shape 150 s after an import: 499 -> 427 MB RSS, live heap 182 -> 120 MB (README,
// Round 10: memory).
const lateTrim = 150 * time.Second

// dropCaches is how long into an idle period acld drops its own caches of states before a
// trim: the query engine's decoded states (--query-cache), the command service's (--command-
// cache) and the audit index's. A restart frees what they hold, and with them most of the
// holes between their entries that the trims cannot return (the heap's spans hold them): at
// the compare shape 15 s after the workloads the spans held 343 MB for 219 live (README,
// Round 12: memory), and RSS was 480-620 MB against ~175 40 s after a restart. An operator
// expects an idle service to come back near that. What it costs is a cold start's: the first
// check or command on each state decodes it from the read model or the spill again (tens of
// µs each). The drop counts its 60 s in quiet ticks (under dropAllocBytes), not idle ones: a
// server under a steady trickle of queries is trimmed but keeps the caches it reads from (the
// review of round 13: with the trims' 32 MB a tick, a server answering some hundreds of checks
// a second dropped them once per idle period).
const dropCaches = 60 * time.Second

// newIdleTrim returns the trimmer for ticks every so often.
func newIdleTrim(every time.Duration, allocs uint64) idleTrim {
	return idleTrim{allocs: allocs, late: int((lateTrim + every - 1) / every), drop: int((dropCaches + every - 1) / every)}
}

// tick takes the cumulative bytes allocated so far and answers whether to trim now, and
// whether to drop acld's caches first.
func (t *idleTrim) tick(allocs uint64) (trim, drop bool) {
	delta := allocs - t.allocs
	t.allocs = allocs
	if delta > dropAllocBytes {
		t.quiet = 0
	} else {
		t.quiet++
	}
	if delta > trimAllocBytes {
		t.trims, t.idle = 0, 0
		return false, false
	}
	t.idle++
	drop = t.quiet == t.drop
	if t.trims >= trimsPerIdle {
		return drop || t.idle == t.late, drop
	}
	t.trims++
	return true, drop
}

// trimWhenIdle runs idleTrim every tick until ctx ends; drop, when not nil, drops acld's caches
// (dropCaches).
func trimWhenIdle(ctx context.Context, every time.Duration, logger *slog.Logger, drop func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	t := newIdleTrim(every, read())
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		trim, dropNow := t.tick(read())
		if !trim {
			continue
		}
		start := time.Now()
		if dropNow && drop != nil {
			drop()
			logger.Debug("idle: dropped the caches of states", "took", time.Since(start))
		}
		debug.FreeOSMemory()
		mid := time.Now()
		c := trimCHeap()  // Pebble's blocks and memtables freed into the C heap (mallocs_cgo.go)
		t.allocs = read() // what the collection itself allocated does not make the next tick busy
		logger.Debug("idle: returned free memory to the system", "took", time.Since(start), "c_heap_took", time.Since(mid),
			"round", t.trims, "c_heap", c)
	}
}

// dropCaches forgets the states acld's caches keep (dropCaches): the query engine's, the
// projector's (and its modification log), the command service's and the audit index's, and empties the Pebble block cache (--cache-mb, C heap that
// the trim then returns). Each is a cache of what its store holds, so nothing is lost.
func (m *Main) dropCaches() {
	m.dropMu.Lock()
	defer m.dropMu.Unlock()
	if m.dropDone {
		return // closing or closed: the stores may be gone
	}
	if m.blocks != nil {
		// A reservation of the whole cache evicts every block not in use; released at once, the
		// cache has its size again and fills with what is read next.
		m.blocks.Reserve(int(m.blocks.MaxSize()))()
	}
	if m.engine != nil {
		m.engine.DropCache()
	}
	if m.proj != nil {
		m.proj.DropCache()
	}
	if m.cmds != nil {
		m.cmds.DropCache()
	}
	if m.replay != nil && m.replay.Audit() != nil {
		m.replay.Audit().DropCache()
	}
}
