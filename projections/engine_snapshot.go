package projections

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// sharedSnapshots lets the queries over the live DB share one Pebble snapshot while the
// projector commits nothing. Opening and closing a snapshot per query took 13% of a check's
// CPU: closing one makes Pebble look for compactions the snapshot held back, under the DB's
// mutex. The projector's seqlock (Projector.gen) tells whether the shared snapshot is still the
// DB's current state: one taken at an even generation, with the generation unchanged since,
// holds exactly the published state, so a query that waited for min_seq sees it too.
type sharedSnapshots struct {
	mu  sync.Mutex // held while replacing cur
	cur atomic.Pointer[sharedSnapshot]
}

// sharedSnapshot is one snapshot and the published state it holds, with a reference count: one
// reference for being current, one per query using it. It is closed when the count reaches 0.
type sharedSnapshot struct {
	snap *pebble.Snapshot
	pub  *published
	gen  uint64
	refs atomic.Int64
}

// acquire takes a reference, unless the snapshot is already closed.
func (s *sharedSnapshot) acquire() bool {
	for {
		r := s.refs.Load()
		if r <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the snapshot.
func (s *sharedSnapshot) release() {
	if s.refs.Add(-1) == 0 {
		s.snap.Close()
	}
}

// current returns a reference to the snapshot of p's DB as of now, with the published state it
// holds; nil while a batch commits (the caller then takes a snapshot of its own).
func (ss *sharedSnapshots) current(p *Projector) *sharedSnapshot {
	g := p.gen.Load()
	if g&1 == 1 {
		return nil
	}
	if s := ss.cur.Load(); s != nil && s.gen == g && s.acquire() {
		return s
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.cur.Load(); s != nil && s.gen == p.gen.Load() && s.acquire() {
		return s // another query replaced it meanwhile
	}
	g1 := p.gen.Load()
	snap := p.db.pb.NewSnapshot()
	pub := p.pub.Load()
	if g2 := p.gen.Load(); g1 != g2 || g1&1 == 1 {
		snap.Close()
		return nil
	}
	s := &sharedSnapshot{snap: snap, pub: pub, gen: g1}
	s.refs.Store(2) // current, and the caller's
	if old := ss.cur.Swap(s); old != nil {
		old.release()
	}
	return s
}

// close releases the current snapshot (DB.Close: Pebble refuses to close with one open).
func (ss *sharedSnapshots) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if old := ss.cur.Swap(nil); old != nil {
		old.release()
	}
}
