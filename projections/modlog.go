package projections

import (
	"hash/maphash"
	"sync"
)

// modLog remembers, for the state keys the projector wrote since floor, the applied sequence
// of the last batch that wrote each (by 64-bit hash of the key). A query over a snapshot that
// holds exactly the published state uses it to reuse a cached state without reading Pebble:
// the state read at sequence V is still the snapshot's when V >= floor and no batch after V
// wrote its key. Hash collisions only make a key look modified (one more read), never fresh.
// It is updated inside the commit window of the seqlock, so a query that sees the published
// state also sees every modification up to it.
type modLog struct {
	mu    sync.RWMutex
	floor uint64
	top   uint64 // the last applied sequence recorded
	last  map[uint64]uint64
	max   int
}

// modSeed hashes state keys for the log; one seed per process, shared by projector and engines.
var modSeed = maphash.MakeSeed()

func keyHash(k []byte) uint64 { return maphash.Bytes(modSeed, k) }

func newModLog(applied uint64, max int) *modLog {
	return &modLog{floor: applied, top: applied, last: map[uint64]uint64{}, max: max}
}

// record notes that the batch committed at applied wrote the keys with these hashes. A full log
// starts over at applied: older cached states are then read again once.
func (l *modLog) record(applied uint64, hashes []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.top = applied
	if len(l.last)+len(hashes) > l.max {
		clear(l.last)
		l.floor = applied
		return
	}
	for _, h := range hashes {
		l.last[h] = applied
	}
}

// drop forgets the log (a new map: clear keeps the buckets) and starts it over at the last
// sequence recorded, as a full log does: every state cached before it is read again once.
func (l *modLog) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last, l.floor = map[uint64]uint64{}, max(l.floor, l.top)
}

// unchangedSince reports whether the key with hash h is known not to have been written after
// sequence v.
func (l *modLog) unchangedSince(h, v uint64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return v >= l.floor && l.last[h] <= v
}
