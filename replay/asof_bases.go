package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/acl-es/acl/projections"
)

// bases keeps the checkpoints that as_of states start from open, read-only, the most recently
// used few of them (LRU): a state is an overlay on one (projections.Overlay), so the states of
// moments after one checkpoint share its open tables, and none copies it. A base pins its
// checkpoint against thinning while open (Pebble opens a table on its first read). Sequence 0
// (no checkpoint at or below the moment) is an empty model in scratch/. The bases share one
// block cache.
type bases struct {
	ckpts   *checkpoints
	scratch string
	cache   *pebble.Cache

	closing sync.WaitGroup // bases being closed in the background

	mu   sync.Mutex
	max  int
	open map[uint64]*base
	// alive holds every base not closed yet, cached or not: one evicted from open while a
	// state still reads it, or closing, still holds its checkpoint's directory, which Pebble
	// locks even read-only, so acquire takes it up again or waits for its close rather than
	// opening the directory a second time ("lock held by current process").
	alive  map[uint64]*base
	order  []uint64 // least recently used first
	closed int      // bases closed (tests)
	opened int      // bases opened (tests)

	// shared is the newest checkpoint opened once to answer as of every checkpoint it links
	// (projections.NewOverlayAsOf: its tables are tagged with their sequence numbers), so that most
	// answers open nothing; opened in the background on demand, and again, newer, at most every
	// sharedRefresh while answers come. nil: none yet.
	shared     *base
	sharedAt   time.Time // when the last was opened
	sharedBusy bool      // one is being opened
	sharedOff  bool      // the chain has tables without tags (made by an older release)
	stopped    bool      // closed: no more shared bases
	sharedUsed int       // answers that started from the shared base (tests)
	// segmentUsed counts answers read as of a flush of an older segment's base (acquireSegment)
	segmentUsed int
	// segments are the flushes of the segments' last checkpoints read by acquireSegment, by
	// the rebase that ends the segment (math.MaxUint64: the newest, before the shared base
	// opened), so that floor answers the flush a moment of theirs starts from.
	segments map[uint64]*projections.Flushes

	// versions holds every version of the states the chain's tables hold, filled from the
	// shared base's tables as it is opened: overlays read their states from it once it has
	// reached their base (projections.Versions). nil: none.
	versions *projections.Versions
	log      *slog.Logger
}

// sharedRefresh is how often, at most, the shared base is opened again on a newer checkpoint
// (each opening opens every table of the chain once).
const sharedRefresh = 10 * time.Second

// base is one open checkpoint; refs counts the states reading it, plus one while cached.
type base struct {
	seq   uint64
	dir   string // the empty model's (sequence 0), removed when closed
	unpin func() // releases the checkpoint to thinning
	db    *projections.DB
	// flushes: the shared base's tables as points to read it as of (projections.Flushes); set
	// (under bases.mu) before it is shared
	flushes *projections.Flushes
	// tablesF, tagged, tablesErr: what tables found, once (tablesOnce)
	tablesOnce sync.Once
	tablesF    *projections.Flushes
	tagged     bool
	tablesErr  error
	ready      chan struct{} // closed once opened (or failed: err)
	closed     chan struct{} // closed once closed: its directory's lock is free again
	err        error
	refs       int  // guarded by bases.mu
	filling    bool // fillVersions started on it; guarded by bases.mu
}

// newBases keeps up to max checkpoints open; they read through shared, or a cache of their own
// (basesCache) if nil.
func newBases(ckpts *checkpoints, scratch string, max int, shared *pebble.Cache) *bases {
	cache := shared
	if cache == nil {
		cache = pebble.NewCache(basesCache)
	} else {
		cache.Ref() // released by close, as an own cache is
	}
	return &bases{ckpts: ckpts, scratch: scratch, max: max, cache: cache, open: map[uint64]*base{},
		alive: map[uint64]*base{}, segments: map[uint64]*projections.Flushes{}}
}

// floor is the moment an as_of state at seq starts from: the newest checkpoint at or below seq,
// or a later flush of the shared base's tables (one each CheckpointEvery events, also where
// thinning dropped the checkpoint, or more often), which it reads as of any of them from its
// chain's last rebase on (a moment before it starts from its own checkpoint).
func (bs *bases) floor(seq uint64) uint64 {
	c, r := bs.ckpts.floor(seq), bs.ckpts.rebaseAfter(seq)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	sh := bs.shared
	if sh != nil && c <= sh.seq && seq >= sh.flushes.From() {
		return max(c, sh.flushes.Floor(seq))
	}
	// A moment of an older segment (or of the newest before the shared base is open) starts
	// from a flush of its segment's last checkpoint (acquireSegment): thinning dropped its own
	// checkpoint.
	if r == 0 && sh == nil {
		r = math.MaxUint64
	}
	if f := bs.segments[r]; f != nil && seq >= f.From() {
		return max(c, f.Floor(seq))
	}
	return c
}

// acquireAt returns an open base to read the state at floor (from floor(seq)) from: the shared
// base (asOf, its flushes: read it as of start, which is floor) when it links that moment, an
// older segment's base (acquireSegment; asOf, as of its flush at or below seq), else the newest
// checkpoint at or below seq (acquire; asOf nil), then at start, the checkpoint's sequence.
// The caller releases it when its state is closed.
func (bs *bases) acquireAt(seq, floor uint64) (b *base, start uint64, asOf *projections.Flushes, err error) {
	bs.mu.Lock()
	sh := bs.shared
	if !bs.sharedOff && !bs.sharedBusy && !bs.stopped && (sh == nil || bs.ckpts.last() > sh.seq && time.Since(bs.sharedAt) >= sharedRefresh) {
		bs.sharedBusy = true
		bs.closing.Add(1)
		go bs.openShared()
	}
	if sh != nil && floor > 0 && floor <= sh.seq && floor >= sh.flushes.From() {
		sh.refs++
		bs.sharedUsed++
		bs.mu.Unlock()
		return sh, floor, sh.flushes, nil
	}
	off := bs.sharedOff
	bs.mu.Unlock()
	// Before the shared base is open (the first answers after a start), a moment is read as of
	// the flushes of its segment's last checkpoint too: thinning keeps few others
	// (checkpoints.servedByFlushes), and the moments of a segment so share one base. (Not on a
	// chain known to be without tags: each moment opens its own checkpoint.)
	if (sh == nil && !off) || (sh != nil && seq < sh.flushes.From()) {
		from := uint64(math.MaxUint64)
		if sh != nil {
			from = sh.flushes.From()
		}
		if b, f := bs.acquireSegment(seq, from, sh != nil); b != nil {
			return b, max(bs.ckpts.floor(seq), f.Floor(seq)), f, nil
		}
	}
	b, err = bs.acquire(seq)
	if err != nil {
		return nil, 0, nil, err
	}
	bs.fillVersions(b)
	return b, b.seq, nil, nil
}

// acquireSegment returns the base to read a moment before a rebase at from as of its flushes:
// the newest checkpoint before the rebase, the last of the segment of the chain the rebase
// ended (each segment's checkpoints link its rebase's tables and its own flushes, at most
// RebaseTables of them), or of an older segment, walking back through their rebases. The
// moments of a segment so share one open base, as the newest segment's share the shared base,
// instead of each opening its checkpoint. nil when there is none (no checkpoint before, a
// chain without tags, an error): the caller opens the checkpoint at or below seq.
//
// fill: add an older segment's states to the versions (fillOlderVersions); not before the
// shared base has started their fill (AddOlder adds to what the versions hold: run first, it
// marked nothing, and the base, marked as filled, was never filled again while open).
func (bs *bases) acquireSegment(seq, from uint64, fill bool) (*base, *projections.Flushes) {
	// Start at seq's own segment: walking back from the newest opened every segment's base on
	// the way (an answer's cost grew with the rebases, and the walk churned the open bases).
	if r := bs.ckpts.rebaseAfter(seq); r > 0 && r < from {
		from = r
	}
	for from > 0 && seq < from {
		c := bs.ckpts.floor(from - 1)
		if c == 0 {
			return nil, nil
		}
		b, err := bs.acquire(c)
		if err != nil {
			return nil, nil
		}
		f, tagged, err := b.tables()
		if err != nil || !tagged || b.seq >= from {
			bs.release(b)
			return nil, nil
		}
		if seq >= f.From() {
			bs.mu.Lock()
			bs.segmentUsed++
			bs.segments[from] = f
			bs.mu.Unlock()
			if fill && from != math.MaxUint64 {
				// An older segment's (the newest one's states are added as the shared base
				// opens on it).
				bs.fillOlderVersions(b, f)
			}
			return b, f
		}
		from = f.From()
		bs.release(b)
	}
	return nil, nil
}

// fillOlderVersions adds, in the background, the states of an older segment's base to the
// state versions (projections.Versions.AddOlder), once per base: the shared base's fill starts
// at its rebase, and without them the states of the segment's moments were read through each
// of its tables (at 10^6 records, a segment of 513). A failure is logged: those states are read
// from the tables.
func (bs *bases) fillOlderVersions(b *base, f *projections.Flushes) {
	if bs.versions == nil {
		return
	}
	bs.fillOnce(b, func() error { return bs.versions.AddOlder(b.db, f) })
}

// fillOnce runs fill in the background, holding b open, unless a fill of b has started.
func (bs *bases) fillOnce(b *base, fill func() error) {
	bs.mu.Lock()
	if b.filling || bs.stopped {
		bs.mu.Unlock()
		return
	}
	b.filling = true
	b.refs++
	bs.closing.Add(1)
	bs.mu.Unlock()
	go func() {
		defer bs.closing.Done()
		defer bs.release(b)
		if err := fill(); err != nil && bs.log != nil {
			bs.log.Error("replay: as_of state versions", "checkpoint", b.seq, "err", err)
		}
	}()
}

// tables lists b's tables as points to read it as of (projections.DB.Flushes), once.
func (b *base) tables() (*projections.Flushes, bool, error) {
	b.tablesOnce.Do(func() {
		b.tablesF, b.tagged, b.tablesErr = b.db.Flushes()
	})
	return b.tablesF, b.tagged, b.tablesErr
}

// fillVersions adds, in the background, the tables of a checkpoint opened on its own that the
// state versions have not reached (one newer than the shared base: its states would be read
// through every table until the next shared base), so that the next states on it read the
// versions. Once per base.
func (bs *bases) fillVersions(b *base) {
	if bs.versions == nil || b.seq == 0 || bs.versions.Applied() >= b.seq {
		return
	}
	bs.fillOnce(b, func() error {
		flushes, tagged, err := b.tables()
		if err != nil || !tagged {
			return err
		}
		return bs.versions.AddTables(b.db, flushes)
	})
}

// openShared opens the newest checkpoint as the shared base, if its tables are all tagged,
// and releases the one before. It is the checkpoint's base (acquire), so that one checkpoint is
// never opened twice (Pebble locks a directory even read-only).
func (bs *bases) openShared() {
	defer bs.closing.Done()
	b, err := bs.acquire(bs.ckpts.last())
	var (
		flushes *projections.Flushes
		tagged  bool
	)
	if err == nil && b.seq > 0 {
		flushes, tagged, err = b.tables()
	}
	bs.mu.Lock()
	bs.sharedBusy, bs.sharedAt = false, time.Now()
	if err != nil || !tagged || bs.stopped {
		bs.sharedOff = bs.sharedOff || (err == nil && b.seq > 0 && !tagged)
		bs.mu.Unlock()
		if b != nil {
			bs.release(b)
		}
		return
	}
	b.flushes = flushes
	old := bs.shared
	bs.shared = b
	b.refs++ // while its tables are added to the versions
	bs.mu.Unlock()
	if old != nil {
		bs.release(old)
	}
	if err := bs.ckpts.setShared(b.seq); err != nil && bs.log != nil {
		bs.log.Error("replay: as_of checkpoints", "err", err)
	}
	if bs.versions != nil {
		// A first start at 10^6 reads every table once (seconds, in the background); later
		// openings add the tables flushed since. A failure is not fatal: overlays on bases the
		// versions have not reached read the tables.
		if err := bs.versions.AddTables(b.db, flushes); err != nil && bs.log != nil {
			bs.log.Error("replay: as_of state versions", "err", err)
		}
	}
	bs.release(b)
}

// acquire returns the open base of the newest checkpoint at or below seq; the caller releases
// it when its state is closed.
func (bs *bases) acquire(seq uint64) (*base, error) {
	found, unpin := bs.ckpts.pinNearest(seq)
	bs.mu.Lock()
	for {
		if bs.stopped {
			bs.mu.Unlock()
			unpin()
			return nil, errors.New("replay: as_of: closed")
		}
		b := bs.open[found]
		if a := bs.alive[found]; b == nil && a != nil {
			if a.refs == 0 {
				// Closing: wait until its directory is free, then open it again.
				bs.mu.Unlock()
				<-a.closed
				bs.mu.Lock()
				continue
			}
			// Evicted while a state still reads it: cached again.
			a.refs++
			bs.open[found] = a
			bs.order = append(bs.order, found)
			bs.evict()
			b = a
		}
		if b != nil {
			unpin()
			b.refs++
			bs.touch(found)
			bs.mu.Unlock()
			<-b.ready
			if b.err != nil {
				bs.release(b)
				return nil, b.err
			}
			return b, nil
		}
		break
	}
	b := &base{seq: found, ready: make(chan struct{}), closed: make(chan struct{}), refs: 2} // cached, and the caller's
	bs.open[found] = b
	bs.alive[found] = b
	bs.opened++
	bs.order = append(bs.order, found)
	bs.mu.Unlock()
	b.unpin = unpin
	b.err = bs.openBase(b)
	close(b.ready)
	bs.mu.Lock()
	if b.err != nil && bs.open[found] == b {
		// A failure is not cached: the next asker tries again.
		delete(bs.open, found)
		bs.order = slices.DeleteFunc(bs.order, func(s uint64) bool { return s == found })
		b.refs--
	}
	bs.evict()
	bs.mu.Unlock()
	if b.err != nil {
		bs.release(b)
		return nil, b.err
	}
	return b, nil
}

// openBase opens b's checkpoint read-only; sequence 0 is an empty model made in scratch/.
func (bs *bases) openBase(b *base) error {
	o := baseDB
	o.Cache = bs.cache
	if b.seq > 0 {
		o.ReadOnly = true
		var err error
		if b.db, err = projections.OpenDB(bs.ckpts.path(b.seq), o); err != nil {
			return err
		}
		return b.db.OpenTables() // while the events to replay are fetched (readAhead)
	}
	dir, err := os.MkdirTemp(bs.scratch, "base-0-")
	if err != nil {
		return fmt.Errorf("replay: as_of scratch: %w", err)
	}
	b.dir = dir
	b.db, err = projections.OpenDB(dir, o) // created, then never written either
	return err
}

// baseDB opens the bases: no WAL, fsync or compactions (nothing writes them), the smallest
// memtable.
var baseDB = projections.DBOptions{MemTableBytes: 4 << 20, DisableWAL: true,
	DisableCompactions: true, FS: noSyncFS{vfs.Default}}

func (bs *bases) release(b *base) {
	bs.mu.Lock()
	b.refs--
	last := b.refs == 0
	bs.mu.Unlock()
	if last {
		bs.closeLater(b)
	}
}

// closeLater closes b off the query's path (closing Pebble takes milliseconds no answer
// waits for).
func (bs *bases) closeLater(b *base) {
	bs.closing.Add(1)
	go func() {
		defer bs.closing.Done()
		b.close()
		bs.mu.Lock()
		bs.closed++
		if bs.alive[b.seq] == b {
			delete(bs.alive, b.seq)
		}
		bs.mu.Unlock()
		close(b.closed)
	}()
}

func (b *base) close() {
	if b.db != nil {
		b.db.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	b.unpin()
}

// touch moves seq to the most recently used end. Called with mu held.
func (bs *bases) touch(seq uint64) {
	if i := slices.Index(bs.order, seq); i >= 0 {
		bs.order = append(slices.Delete(bs.order, i, i+1), seq)
	}
}

// evict drops the least recently used bases beyond max from the cache; one still read by a
// state is closed when that state is. Called with mu held; closing happens in the background.
func (bs *bases) evict() {
	for len(bs.order) > bs.max {
		seq := bs.order[0]
		bs.order = bs.order[1:]
		b := bs.open[seq]
		delete(bs.open, seq)
		if b.refs--; b.refs == 0 {
			bs.closeLater(b)
		}
	}
}

// close closes the cached bases; the states must be closed first.
func (bs *bases) close() {
	bs.mu.Lock()
	bs.stopped = true
	if sh := bs.shared; sh != nil {
		bs.shared = nil
		if sh.refs--; sh.refs == 0 {
			bs.closeLater(sh)
		}
	}
	for _, seq := range bs.order {
		b := bs.open[seq]
		if b.refs--; b.refs == 0 {
			bs.closeLater(b)
		}
	}
	bs.order, bs.open = nil, map[uint64]*base{}
	bs.mu.Unlock()
	bs.closing.Wait()
	bs.cache.Unref()
}
