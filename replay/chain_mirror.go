package replay

import (
	"slices"
	"sync"
	"sync/atomic"
)

// chainMirror queues the batches the live projector commits (projections.Projector.AddMirror)
// for the filler, which applies them to the chain's head: the projector has already computed
// each batch's writes, so keeping the chain costs a memtable insert per batch instead of a
// second replay whose every state read probes each table of the chain (at 10^6 records, ~700
// tables: 29 % of acld's CPU under 781 commands/s). The queue is bounded; a batch that does not
// fit is dropped, and the filler replays its events from the stream instead.
type chainMirror struct {
	queued chan struct{} // a batch was queued
	gaps   chan struct{} // the projector passed a multiple of the spacing: look for gaps too

	mu    sync.Mutex
	items []mirroredBatch
	bytes int
	max   int

	applied, replayed, dropped atomic.Uint64 // events applied from batches, replayed; batches dropped
}

// mirroredBatch is one committed batch: the live model went from prev to last with it.
type mirroredBatch struct {
	repr       []byte
	prev, last uint64
}

// mirrorQueueBytes bounds the batches queued for the filler. Live batches are a few KB (one
// command each while the change feed keeps up); a catch-up's are MBs and outrun a filler busy
// replaying, which then replays those too.
const mirrorQueueBytes = 16 << 20

func newChainMirror(maxBytes int) *chainMirror {
	return &chainMirror{queued: make(chan struct{}, 1), gaps: make(chan struct{}, 1), max: maxBytes}
}

// put is the projector's MirrorFunc: it copies the batch (repr is the projector's, reused) and
// wakes the filler. It runs on the projector's goroutine and never blocks on the filler.
func (m *chainMirror) put(repr []byte, prev, last uint64) {
	m.mu.Lock()
	if m.bytes+len(repr) > m.max {
		m.mu.Unlock()
		m.dropped.Add(1)
		return
	}
	m.items = append(m.items, mirroredBatch{repr: slices.Clone(repr), prev: prev, last: last})
	m.bytes += len(repr)
	m.mu.Unlock()
	select {
	case m.queued <- struct{}{}:
	default: // a wake is pending: the filler takes this batch with it
	}
}

// take returns the batches queued, in commit order, and empties the queue.
func (m *chainMirror) take() []mirroredBatch {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.items
	m.items, m.bytes = nil, 0
	return out
}

func (m *chainMirror) wakeGaps() {
	select {
	case m.gaps <- struct{}{}:
	default:
	}
}
