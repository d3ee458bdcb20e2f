package main

import (
	"context"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// cachePad keeps the shared block cache's room for blocks at --cache-mb. The cache is sized for
// the blocks plus every store's memtables at full size, because Pebble reserves each memtable's
// size in it; while the memtables are smaller (after a start they begin at 256 KiB and grow),
// that room would hold blocks too: 146 MB of them 40 s after a restart on the compare shape,
// read by the stores' start-up work, against 64 allowed. The pad reserves what the memtables
// do not hold, and follows them.
type cachePad struct {
	cache   *pebble.Cache
	reserve int64        // the memtables' allowance in the cache's size
	used    func() int64 // bytes the memtables of the stores it sees hold now
	release func()       // the pad's current reservation
	pad     int64        // its size
}

// padFor is the reservation that leaves the cache its blocks: the allowance the memtables do
// not use, beside unseen in use elsewhere (the as_of chain head's, counted as always full).
func padFor(reserve, used, unseen int64) int64 { return max(0, reserve-unseen-used) }

// run adjusts the pad every second until ctx ends.
func (p *cachePad) run(ctx context.Context, unseen int64) {
	p.adjust(unseen)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.release()
			return
		case <-t.C:
			p.adjust(unseen)
		}
	}
}

// adjust releases the pad before reserving the next one: holding both a moment would shrink the
// cache by twice the pad, and Pebble evicts blocks at once down to the room left (every block,
// each second, when it did).
// Unchanged (memtables grow and shrink in steps), the pad is left alone: a reservation takes
// every shard's lock.
func (p *cachePad) adjust(unseen int64) {
	next := padFor(p.reserve, p.used(), unseen)
	if p.release != nil {
		if next == p.pad {
			return
		}
		p.release()
	}
	p.release, p.pad = p.cache.Reserve(int(next)), next
}

// memtableBytes sums the memtables (in use and awaiting release) of the stores open now.
func memtableBytes(stores []namedStore) int64 {
	var n int64
	for _, st := range stores {
		if m := st.metrics(); m != nil {
			n += int64(m.MemTable.Size + m.MemTable.ZombieSize)
		}
	}
	return n
}
