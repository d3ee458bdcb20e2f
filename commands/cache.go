package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// cache keeps aggregate states by subject, each with the sequence it reflects, so that most
// commands decide without reading the store. A stale entry costs a write a conflict and a
// reload (every write states the sequence it decided on), but a decision that only reads an
// aggregate (a principal's roles or level, a record's units) has no such check: a state kept
// stale would keep deciding on what another instance revoked. Entries are invalidated by the
// service's subscription to the event subjects (writes of other instances); the instance's own
// writes update them directly.
//
// That subscription is a core one: it may get another instance's message before the stream
// serves it to a read, so a reload right after the invalidation can read the older state. The
// invalidation therefore carries a floor (see floorOf): the message is at a sequence above the
// one its append expected, so a state below it does not include it yet. Such a state is used by
// the command that read it (the stream did not serve the message, so it had not acknowledged it
// either) but neither cached as fresh nor spilled: the next use reads the stream again. Floors
// are kept per subject, also of subjects not cached, until a state that reaches them is read or
// the spill's follower has passed a message at or above them (see floorMet, followSpill), or,
// on a replicated stream, only until such a state is read (a replica may serve a read behind
// the leader the follower reads from).
//
// Invalidations can also be lost (a slow consumer drops them; a reset marks only what is
// cached then). The spill's follower reads every stored message in order and notes each
// cached subject's last (entry.seen): a state behind it is not fresh, so no state stays behind
// a stored message for longer than the follower's lag. Without a spill there is no follower,
// and a reset after drops is the only guard.
type cache struct {
	store *events.Store
	max   int

	// snaps reads and writes tenant snapshots; nil until the service started, and when they
	// are off or their bucket could not be opened.
	snaps atomic.Pointer[snapshotter]
	// spill keeps the principal and record states on disk (spill.go); nil when off. It is
	// written and deleted under mu. opened is the spill as opened, closed by closeSpill even
	// after an error turned it off.
	spill  *spill
	opened *spill
	logger *slog.Logger
	loads  *prometheus.CounterVec // nil: not counted
	behind prometheus.Counter     // nil: not counted
	follow events.Follower        // the spill's follower reads through it; nil: store

	mu      sync.Mutex
	entries map[string]*entry
	// floors: per subject, the lowest sequence a state must reach to be fresh (see above), in
	// two generations: when floors holds maxFloors, it becomes oldFloors and the oldest are
	// forgotten. Under mu.
	floors, oldFloors map[string]uint64
	// invals counts the invalidations from other instances and the resets (under mu): an
	// orphan's state is spilled only if none came since it was read (see keep).
	invals uint64
	// caught counts the fresh states found behind a message the spill's follower read
	// (notBehind), as acl_command_states_behind_total.
	caught atomic.Uint64
	// replicated: reads may be served by a replica behind the stream's leader, whose
	// messages the spill's follower reads; a floor is then kept until a state read reaches it.
	replicated bool
}

// maxFloors bounds a generation of floors. A floor outlives its message's storing by far in
// practice: it is dropped when a state reaching it is read or the spill's follower passes the
// message, and forgotten only after 65,536 to 131,072 floors of other subjects came since. Only
// another instance's writes make floors (acld's connection does not get its own appends back).
const maxFloors = 1 << 16

// entry is one aggregate. write is held by the command that writes the aggregate, so that
// commands of one instance do not conflict with each other; load serializes loads and
// publications of new states; gen counts invalidations.
type entry struct {
	c       *cache
	subject string
	ref     events.AggregateRef
	write   sync.Mutex
	load    sync.Mutex
	gen     atomic.Uint64
	snap    atomic.Pointer[snapshot]
	// seen is the sequence of the last message of the subject the spill's follower read
	// (behindLocked, which alone writes it, under the cache's mu): a state behind it is not fresh.
	seen atomic.Uint64
	// sinceSnap counts the events applied to the state since the last tenant snapshot.
	sinceSnap atomic.Int64
	// cmds is a tenant's memory of its commands (see commandIndex); unused for others.
	cmds commandIndex
}

// snapshot is a read-only state and the invalidation generation it was loaded at: it is fresh
// while the entry's gen is still that.
type snapshot struct {
	state any
	gen   uint64
	// assumed: the state of an aggregate a command creates, assumed empty without reading it
	// (execution.read); never stored in an entry.
	assumed bool
	// pending: the state an open atomic batch of the bulk path left (batchRun.group), with
	// its commands applied but not stored yet; never stored in an entry.
	pending bool
	// pos is the spill follower's position when the state was read: it includes every
	// message of its subject up to it (see spill.mayKeepLocked).
	pos uint64
	// inv is the cache's invals when the state was read (0 where not known: a state an open
	// batch left, see batch.go; keep then takes it for one read before any invalidation).
	inv uint64
}

// tenantLoadTimeout bounds the load of a tenant's history (see fresh).
const tenantLoadTimeout = 2 * time.Minute

func newCache(store *events.Store, max int, logger *slog.Logger) *cache {
	return &cache{store: store, max: max, entries: map[string]*entry{}, logger: logger}
}

// loaded counts a state read other than from memory.
func (c *cache) loaded(from string) {
	if c.loads != nil {
		c.loads.WithLabelValues(from).Inc()
	}
}

// openSpill starts keeping dropped states in dir, with those kept there before if they are of
// the same stream; followSpill must follow.
func (c *cache) openSpill(ctx context.Context, dir string, shared *pebble.Cache) error {
	info, err := c.store.StreamInfo(ctx)
	if err != nil {
		return fmt.Errorf("commands: the state spill: %w", err)
	}
	sp, err := openSpill(dir, strconv.FormatInt(info.Created.UnixNano(), 10), shared)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.spill, c.opened = sp, sp
	c.mu.Unlock()
	return nil
}

// followSpill starts the spill's follower (see spill.go) until ctx ends. The caller has
// subscribed to the invalidations first: the follower reads up to the stream's end as of now,
// after which the spill is read.
func (c *cache) followSpill(ctx context.Context) error {
	c.mu.Lock()
	sp := c.spill
	if sp != nil {
		sp.done = make(chan struct{})
	}
	c.mu.Unlock()
	if sp == nil {
		return nil
	}
	end, err := c.store.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("commands: the state spill: %w", err)
	}
	if sp.pos.Load() >= end {
		sp.trusted.Store(true)
	}
	go func() {
		defer close(sp.done)
		var follow events.Follower = c.store
		if c.follow != nil {
			follow = c.follow
		}
		err := follow.Follow(ctx, sp.pos.Load()+1, func(ms []events.Message) error {
			// mu is taken per message, not per batch: a batch while catching up is 4096
			// messages, and every command takes mu to find its entries.
			for _, m := range ms {
				c.mu.Lock()
				err := errSpillOff
				if c.spill == sp {
					err = c.followedLocked(sp, m)
				}
				c.mu.Unlock()
				if err != nil {
					return errSpillOff
				}
			}
			last := ms[len(ms)-1].Seq
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.spill != sp {
				return errSpillOff
			}
			// Below the messages left to the cache (spill.awaited) until it spills them.
			pos := sp.settledLocked(last)
			if err := sp.setPos(pos); err != nil {
				c.spillErrLocked(err)
				return errSpillOff
			}
			sp.pos.Store(pos)
			if last >= end {
				sp.trusted.Store(true)
			}
			return nil
		})
		if ctx.Err() == nil && !errors.Is(err, errSpillOff) {
			c.mu.Lock()
			if c.spill == sp {
				c.spillErrLocked(fmt.Errorf("follower: %w", err))
			}
			c.mu.Unlock()
		}
	}()
	return nil
}

var errSpillOff = errors.New("commands: the state spill is off")

// followedLocked is the follower's work for one message (spill.processedLocked); an error has
// turned the spill off.
func (c *cache) followedLocked(sp *spill, m events.Message) error {
	e := c.entries[m.Subject]
	if err := sp.processedLocked(m, e != nil); err != nil {
		c.spillErrLocked(err)
		return err
	}
	if e != nil {
		c.behindLocked(e, m.Seq)
	}
	// Processed: the spill has the state of its subject up to it, or none, or left the
	// message awaited (unspill does not read such a state). The floor is no longer needed
	// where reads are served by the server the follower reads from (see Options.Replicated).
	if !c.replicated {
		c.passedLocked(m.Subject, m.Seq)
	}
	return nil
}

// behindLocked notes that the spill's follower has read the message at seq of the entry's
// subject: a state behind it is stale (entry.seen). The subscription's invalidations are the
// quick way to learn of other instances' writes, but they can be lost: a slow consumer drops
// them (reset then marks what is cached at that moment, and a reload in the gap before the
// stream serves the dropped message is cached as fresh again), and a subscription being
// replaced misses some. The follower reads every stored message in order, so no state stays
// behind one for longer than the follower's lag. Nothing is marked here: the instance's own
// write is read by the follower before or after its writer publishes the state that includes
// it, and only a state read behind the message in that moment costs a reload.
func (c *cache) behindLocked(e *entry, seq uint64) {
	if seq > e.seen.Load() { // only the follower writes it, under mu
		e.seen.Store(seq)
	}
}

// closeSpill closes the spill once its follower stopped (the caller ended its context).
// spillMetrics reads the spill's Pebble figures under mu, which closeSpill takes to detach it
// before closing it: a spill is never read once closing.
func (c *cache) spillMetrics() *pebble.Metrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened == nil {
		return nil
	}
	return c.opened.db.Metrics()
}

func (c *cache) closeSpill() {
	c.mu.Lock()
	sp := c.opened
	c.spill, c.opened = nil, nil
	c.mu.Unlock()
	if sp == nil {
		return
	}
	if sp.done == nil {
		_ = sp.close()
		return
	}
	select {
	case <-sp.done:
	case <-time.After(10 * time.Second):
		c.logger.Warn("the command state spill's follower did not stop; closing it anyway")
	}
	if err := sp.close(); err != nil {
		c.logger.Warn("close the command state spill", "err", err)
	}
}

// entry returns the entry of an aggregate, creating it empty (not loaded).
func (c *cache) entry(tenant string, ref events.AggregateRef) (*entry, error) {
	// The subject is looked up from a buffer on the stack: a string is made only for a new
	// entry (every command looks up its aggregates; most are there).
	var buf [events.MaxSubject]byte
	key, err := events.AppendSubject(buf[:0], tenant, ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[string(key)]
	if e == nil {
		if len(c.entries) >= c.max {
			c.evictLocked()
		}
		subject := string(key)
		e = &entry{c: c, subject: subject, ref: ref}
		c.entries[subject] = e
	}
	return e, nil
}

// evictLocked drops about a quarter of the entries, at random (map order). A command that still
// holds a dropped entry finishes with it; a new entry for the same subject is loaded afresh,
// and the expected sequence of any write keeps the two honest.
func (c *cache) evictLocked() {
	n := max(len(c.entries)/4, 1)
	for k, e := range c.entries {
		if n <= 0 {
			return
		}
		// Tenants stay: one per tenant, and the most expensive to load (their subject holds a
		// seat change per access level change: 10^5 messages, ~2 s, at 10^5 principals).
		if e.ref.Kind == events.KindTenant {
			continue
		}
		delete(c.entries, k)
		n--
	}
}

// drop forgets every entry but the tenants', as evictLocked does a quarter of them.
func (c *cache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := make(map[string]*entry)
	for k, e := range c.entries {
		if e.ref.Kind == events.KindTenant {
			kept[k] = e
		}
	}
	c.entries = kept // a new map: maps do not shrink
}

// invalidate marks the subject's state stale, if it is cached, and forgets its spilled state.
// floor, when not 0, is the lowest sequence a state of the subject must reach to include the
// message (floorOf).
func (c *cache) invalidate(subject string, floor uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invals++
	if floor > 0 {
		c.raiseFloorLocked(subject, floor)
	}
	if e := c.entries[subject]; e != nil {
		e.gen.Add(1)
	}
	if c.spill != nil {
		c.spillErrLocked(c.spill.delete(subject))
	}
}

// raiseFloorLocked makes floor the lowest sequence a fresh state of subject may be at, unless a
// higher one is known.
func (c *cache) raiseFloorLocked(subject string, floor uint64) {
	if old, ok := c.oldFloors[subject]; ok {
		floor = max(floor, old)
		delete(c.oldFloors, subject)
	}
	if c.floors[subject] >= floor {
		return
	}
	if c.floors == nil {
		c.floors = map[string]uint64{}
	}
	if _, ok := c.floors[subject]; !ok && len(c.floors) >= maxFloors {
		c.oldFloors, c.floors = c.floors, map[string]uint64{}
	}
	c.floors[subject] = floor
}

// floorLocked is the lowest sequence a fresh state of subject may be at (0: any).
func (c *cache) floorLocked(subject string) uint64 {
	if len(c.floors) == 0 && len(c.oldFloors) == 0 {
		return 0
	}
	return max(c.floors[subject], c.oldFloors[subject])
}

// passedLocked forgets the floor of subject if seq reaches it: a state at seq was read, or the
// spill's follower processed a message at seq.
func (c *cache) passedLocked(subject string, seq uint64) {
	if f, ok := c.floors[subject]; ok && f <= seq {
		delete(c.floors, subject)
	}
	if f, ok := c.oldFloors[subject]; ok && f <= seq {
		delete(c.oldFloors, subject)
	}
}

// floorMet forgets the floor of subject that a state read at seq reached, unless the spill's
// follower has yet to process seq: until then it may still bring up a state of the subject
// from before the floor (a registration it reads after the invalidation deleted the spilled
// state), which the floor keeps unspill from taking as fresh; the follower forgets the floor
// when it passes.
func (c *cache) floorMet(subject string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spill != nil && c.spill.processed < seq {
		return
	}
	c.passedLocked(subject, seq)
}

// reset marks every entry stale: used when invalidations may have been lost. A state is still
// right up to the sequence it reflects, so the next use loads only what came after it (dropping
// the entries instead made a big tenant reload its whole history).
func (c *cache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invals++
	for _, e := range c.entries {
		e.gen.Add(1)
	}
	if c.spill != nil {
		c.spillErrLocked(c.spill.clear())
	}
}

// keep writes a state the entry loaded or published at generation gen to the spill, if the
// entry is still the cache's for its subject and was not invalidated since, or if it is an
// orphan that may be kept (orphanLocked): any other state would be one the cache no longer
// trusts, so the spilled one is deleted instead. When another entry is the cache's (the entry
// was dropped while a command used it, and st is that command's write), that entry has not
// seen st: it is marked stale. The caller holds e.load, so an entry's states reach the spill in
// order, and stores st in the entry only after keep: when st is the caller's alone (owned, not
// shared yet), keep moves its older commands out (forgetOld) into the spill, in the same batch
// as the state, or with its deletion, and a state must not be read before they are there
// (spill_moved.go).
func (c *cache) keep(e *entry, st any, base *snapshot, owned bool) {
	if c.readable(e, false) == nil {
		return
	}
	var old aggregates.Commands
	if owned {
		old = forgetOld(st)
	}
	// Encoded before taking mu, which every command takes to find its entries.
	b, encErr := encodeState(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spill == nil {
		return // the spill went off meanwhile: a state that moved commands out reads the stream
	}
	mv := c.spill.movedBatch(e.subject, &old)
	cur, seq := c.entries[e.subject], stateSeq(st)
	mine := cur == e && e.gen.Load() == base.gen
	orphan, newer := false, false
	if cur == nil {
		orphan, newer = c.orphanLocked(e.subject, seq, base)
		if newer {
			if mv != nil {
				c.spillErrLocked(errors.Join(mv.Commit(c.spill.wo), mv.Close()))
			}
			return
		}
	}
	if (mine || orphan) && c.spill.mayKeepLocked(e.subject, seq, base.pos) {
		err := encErr
		if err == nil {
			err = c.spill.setWith(e.subject, b, mv)
		} else if mv != nil {
			err = errors.Join(err, mv.Commit(c.spill.wo), mv.Close())
		}
		if err != nil {
			c.spillErrLocked(errors.Join(err, c.spill.delete(e.subject)))
			return
		}
		c.spill.keptLocked(e.subject, seq)
		return
	}
	if cur != nil && cur != e {
		cur.gen.Add(1)
	}
	c.spillErrLocked(c.spill.deleteWith(e.subject, mv))
}

// orphanLocked decides for the state of an entry the cache dropped while a command used it,
// no entry of its subject having come since (an orphan: the cache drops a quarter of its
// entries at random when full, and an import has up to 2,000 appends in flight). Deleting its
// spilled state left a few percent of the records an import wrote without one, each read from
// the stream (an 8 MB message block for nats-server) by the next command on it. The state is
// still the aggregate's at its sequence (a load, or this instance's own append), so it may be
// kept, under the spill's own rule (mayKeepLocked, checked by keep), when:
//   - no invalidation came since it was read (inv): another instance's write deleted the
//     spilled state, and the dropped entry, no longer the cache's, was not marked stale;
//   - it reaches its subject's floor;
//   - the spill holds no state of the subject at or after it (read from Pebble: the note of
//     the cache's own newer writes, spill.kept, is bounded). newer reports that one: it stays.
func (c *cache) orphanLocked(subject string, seq uint64, base *snapshot) (keep, newer bool) {
	at, ok, err := c.spill.seqOf(subject)
	switch {
	case err != nil:
		return false, false
	case ok && at >= seq:
		return false, true
	}
	return base.inv == c.invals && seq >= c.floorLocked(subject), false
}

// spillErrLocked turns the spill off after an error: a state it failed to delete might be
// stale. The cache then works as without it.
func (c *cache) spillErrLocked(err error) {
	if err == nil {
		return
	}
	c.logger.Error("command state spill off", "dir", c.spill.dir, "err", err)
	c.spill = nil
}

// readable returns the spill if it may hold the entry's state (not a tenant's), and, with
// read, if it may be read: its follower reached the stream's end as of the start. nil
// otherwise.
func (c *cache) readable(e *entry, read bool) *spill {
	if e.ref.Kind == events.KindTenant {
		return nil
	}
	c.mu.Lock()
	sp := c.spill
	c.mu.Unlock()
	if sp == nil || read && !sp.trusted.Load() {
		return nil
	}
	return sp
}

// spilled reports whether the spill has a state of the entry's aggregate.
func (c *cache) spilled(e *entry) bool {
	sp := c.readable(e, true)
	return sp != nil && sp.has(e.subject)
}

// bounds returns the spill follower's position (0 without a spill), the floor of subject
// (floorLocked) and the count of invalidations (invals).
func (c *cache) bounds(subject string) (pos, floor, inv uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spill != nil {
		pos = c.spill.pos.Load()
	}
	return pos, c.floorLocked(subject), c.invals
}

// awaiting reports whether the spill's follower left a message of subject to the cache
// (spill.awaited): the spilled state may lack it until the cache spills one that includes it.
// The follower has passed the message, so no floor guards it any more (passedLocked).
func (c *cache) awaiting(sp *spill, subject string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(sp.awaited[subject]) > 0
}

// unspill returns the spilled state of the entry, or nil: also while the follower has not yet
// read up to the stream's end as of the start, or left a message of it awaited.
func (c *cache) unspill(e *entry) any {
	sp := c.readable(e, true)
	if sp == nil || c.awaiting(sp, e.subject) {
		return nil
	}
	st, err := sp.get(e.subject)
	if err != nil {
		c.logger.Warn("spilled state not used", "subject", e.subject, "err", err)
		return nil
	}
	return st
}

// fresh returns the entry's state, loading what the store has beyond it when the entry was
// never loaded or was invalidated since.
func (c *cache) fresh(ctx context.Context, e *entry) (*snapshot, error) {
	if s := e.snap.Load(); s != nil && s.gen == e.gen.Load() && notBehind(e, s) {
		return s, nil
	}
	e.load.Lock()
	defer e.load.Unlock()
	gen := e.gen.Load() // read before loading: an invalidation during the load makes it stale again
	s := e.snap.Load()
	if s != nil && s.gen == gen {
		if notBehind(e, s) {
			return s, nil
		}
		c.caught.Add(1)
		if c.behind != nil {
			c.behind.Inc()
		}
	}
	if e.ref.Kind == events.KindTenant {
		// A tenant's whole history (no snapshot yet) can take longer than one command may: at
		// 10^6 records under load it outlasted the 9 s command timeout, and the commands queued
		// behind it then started it again one after another, each failing at once on its own
		// expired context. The load now goes on, for the commands waiting behind this one, when
		// this command's time is up.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), tenantLoadTimeout)
		defer cancel()
	}
	var st any
	var after uint64
	owned := false // st is this load's own (a cached state is cloned before applying to it)
	fromSpill := false
	// Read first: the state read includes every message up to pos, and it is fresh only if it
	// reaches floor (read after gen: an invalidation raises the floor before it bumps gen).
	pos, floor, inv := c.bounds(e.subject)
	// A state behind a message the follower read is not fresh either (one it reads after this
	// is checked by the next fresh).
	least := max(floor, e.seen.Load())
	if s != nil {
		st, after = s.state, stateSeq(s.state)
	} else if sp := c.unspill(e); sp != nil {
		st, owned, fromSpill = sp, true, true
		c.loaded("spill")
		if at := stateSeq(sp); at < least {
			// Behind a message another instance appended since the spill's follower
			// passed: read what the stream has after it.
			after, fromSpill = at, false
		}
	} else if sn := c.snaps.Load(); sn != nil && e.ref.Kind == events.KindTenant {
		if t := sn.load(ctx, e); t != nil {
			st, after, owned = t, t.Seq, true
		}
	}
	var msgs []events.Message
	if !fromSpill { // a spilled state is as fresh as a cached one (see spill.go)
		var err error
		if msgs, err = c.store.Load(ctx, e.subject, after); err != nil {
			return nil, err
		}
		c.loaded("stream")
	}
	if st == nil {
		st = newState(e.ref)
	} else if len(msgs) > 0 && !owned {
		st = cloneState(st)
	}
	n := 0
	for _, m := range msgs {
		for _, env := range m.Events {
			if err := applyEnvelope(st, env); err != nil {
				return nil, fmt.Errorf("commands: load %s: %w", e.subject, err)
			}
			n++
		}
	}
	e.absorbState(st)
	if sn := c.snaps.Load(); sn != nil {
		sn.added(e, st, n)
	}
	if at := stateSeq(st); at < least {
		// The stream does not serve a message this instance was told about yet (or refused
		// it): this command decides on what the stream has, the next one reads it again.
		s = &snapshot{state: st, gen: gen - 1, pos: pos, inv: inv}
		e.snap.Store(s)
		return s, nil
	} else if floor > 0 {
		c.floorMet(e.subject, at)
	}
	s = &snapshot{state: st, gen: gen, pos: pos, inv: inv}
	if !fromSpill {
		c.keep(e, st, s, owned || len(msgs) > 0) // before the state is shared (keep)
	}
	e.snap.Store(s)
	return s, nil
}

// notBehind reports whether a fresh state s of e includes every message of its subject the
// spill's follower has read (behindLocked).
func notBehind(e *entry, s *snapshot) bool {
	return stateSeq(s.state) >= e.seen.Load()
}

// publish replaces the entry's state by one a writer built on top of the state it decided on,
// unless a load already put a newer state there.
func (c *cache) publish(e *entry, st any, base *snapshot) {
	e.load.Lock()
	defer e.load.Unlock()
	if cur := e.snap.Load(); cur != nil && stateSeq(cur.state) > stateSeq(st) {
		return
	}
	s := &snapshot{state: st, gen: base.gen, pos: base.pos, inv: base.inv}
	c.keep(e, st, s, true) // before the state is shared (keep)
	e.snap.Store(s)
}

// stale forces the next fresh to read the store, and forgets the spilled state.
func (e *entry) stale() {
	e.gen.Add(1)
	if e.c != nil {
		e.c.forget(e)
	}
}

// forget deletes the entry's spilled state.
func (c *cache) forget(e *entry) {
	if e.ref.Kind == events.KindTenant {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spill != nil {
		c.spillErrLocked(c.spill.delete(e.subject))
	}
}
