package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
)

// Follower is the part of the event store the projector reads: *events.Store or *events.Fanout.
type Follower interface {
	Follow(ctx context.Context, from uint64, fn func([]events.Message) error) error
	LastSeq(ctx context.Context) (uint64, error)
}

// Projector follows the event stream into the read model. One goroutine runs it; queries read
// the DB concurrently through snapshots.
type Projector struct {
	db    *DB
	store Follower

	mu      sync.Mutex // serializes batches
	states  *stateCache
	handoff handoff        // states offered by the command service of this process (handoff.go)
	batch   *pebble.Batch  // reused: its buffer keeps the size of the largest batch
	writes  writes         // reused: the batch's writes before they are sorted into it
	writer  *writer        // reused: builds each batch
	decoded []decodedEvent // reused: the batch's decoded events

	applied Watermark     // the last stream sequence committed
	gen     atomic.Uint64 // odd while a batch is being committed (published.go)
	pub     atomic.Pointer[published]
	mods    *modLog
	overlay *pebble.Batch // set for an Overlay: batches are written into it, not committed
	over    reader        // what an Overlay reads: overlay, or overlay as of some tables
	target  atomic.Uint64 // the stream's last sequence when Run started: ready once applied
	started atomic.Bool

	feed    *Feed     // the change feed, handed each live message after its commit (feed.go)
	mirrors []*mirror // handed each committed batch (mirror.go); replaced, not changed in place

	// beforeCommit, when set (tests), runs after a batch is built and before it is committed;
	// an error abandons the batch as a crash would.
	beforeCommit func(applied uint64) error
}

// NewProjector returns a projector over db reading from store (nil when only ApplyMessages is
// used, as replay does on a checkpoint copy).
func NewProjector(db *DB, store Follower) (*Projector, error) {
	if _, err := migrateRoleHolders(db.pb); err != nil {
		return nil, err
	}
	pub, err := loadPublished(db.pb)
	if err != nil {
		return nil, err
	}
	return newProjector(db, store, pub), nil
}

// NewCopyProjector returns a projector for ApplyMessages on a throw-away copy (replay's as_of
// states), which publishes no tenant's version up front: a query through it reads the
// tenant's from its snapshot. Listing them seeks into every table, and a copy of an as_of
// checkpoint holds hundreds of level-0 tables (half of a random as_of's CPU at 10^6 records).
func NewCopyProjector(db *DB) (*Projector, error) {
	applied, err := db.Applied()
	if err != nil {
		return nil, err
	}
	return newProjector(db, nil, &published{applied: applied, tenants: map[string]uint64{}}), nil
}

// newProjector starts at the applied sequence pub holds.
func newProjector(db *DB, store Follower, pub *published) *Projector {
	p := &Projector{db: db, store: store, states: newStateCache(50_000)}
	p.applied.Advance(pub.applied)
	p.pub.Store(pub)
	p.mods = newModLog(pub.applied, 1<<18) // at most ~10 MB; a reset costs one read per cached state
	return p
}

// Run follows the stream from the applied sequence until ctx ends or a batch fails. While the
// store is unavailable (no leader, connection lost) it tries again, from what it has applied,
// with a backoff of up to MaxBackoff.
func (p *Projector) Run(ctx context.Context) error {
	if p.store == nil {
		return errors.New("projections: projector has no store to follow")
	}
	backoff := minBackoff
	for {
		before := p.Applied()
		err := p.follow(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, events.ErrUnavailable) {
			return err
		}
		if p.Applied() > before {
			backoff = minBackoff // it made progress: the outage is new
		}
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

const minBackoff = 50 * time.Millisecond

// MaxBackoff bounds the wait between two attempts to follow an unavailable store.
const MaxBackoff = 5 * time.Second

// follow reads the readiness target once, then follows from the applied sequence.
func (p *Projector) follow(ctx context.Context) error {
	if !p.started.Load() {
		last, err := p.store.LastSeq(ctx)
		if err != nil {
			return fmt.Errorf("projections: stream last sequence: %w", err)
		}
		p.target.Store(last)
		p.started.Store(true)
	}
	if err := p.store.Follow(ctx, p.Applied()+1, p.ApplyMessages); err != nil {
		return fmt.Errorf("projections: follow: %w", err)
	}
	return nil
}

// Applied is the last stream sequence committed to the read model.
func (p *Projector) Applied() uint64 { return p.applied.Load() }

// Ready reports whether Run has caught up with the stream as it was when Run started.
func (p *Projector) Ready() bool { return p.started.Load() && p.Applied() >= p.target.Load() }

// ApplyMessages applies msgs in one Pebble batch together with the last applied sequence.
// Messages at or below the applied sequence are skipped, so a redelivery applies nothing twice.
//
// With a change feed (SetFeed), live messages (after the stream's last sequence when Run
// started) are committed one per batch, each handed to the feed with a snapshot of the read
// model before it: the feed tells what each message changed. Those of tenants nobody listens
// to are committed together, up to maxQuietRun, with one snapshot (Feed.quiet).
func (p *Projector) ApplyMessages(msgs []events.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(msgs) > 0 {
		n := p.runEnd(msgs) // a mirror's checkpoint sequence ends a batch
		if err := p.applyRun(msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// applyRun applies msgs, in one batch or, for the feed, one per message, or in quiet runs;
// the caller holds mu.
func (p *Projector) applyRun(msgs []events.Message) error {
	for len(msgs) > 0 {
		// Live messages of tenants nobody listens to (Feed.quiet) are committed together, with
		// one snapshot before them for the feed, which derives them only if a subscription
		// came after all.
		if p.live(msgs[0].Seq) && p.feed.room() > 0 {
			if n, mark := p.feed.quiet(msgs[:min(len(msgs), maxQuietRun)]); n > 0 {
				if err := p.apply(msgs[:n], &mark); err != nil {
					return err
				}
				msgs = msgs[n:]
				continue
			}
		}
		// Split only while the feed has room for every message: under a burst (a bulk load)
		// the feed would drop them anyway, and one batch keeps the projector's pace.
		if len(msgs) > 1 && p.live(msgs[len(msgs)-1].Seq) && p.feed.room() >= len(msgs) {
			if err := p.apply(msgs[:1], nil); err != nil {
				return err
			}
			msgs = msgs[1:]
			continue
		}
		return p.apply(msgs, nil)
	}
	return nil
}

// maxQuietRun bounds a quiet run: should a subscription come while it is committed, the feed
// derives it over the read model before it, each message's sides holding what the run's
// earlier messages replaced, which effects then compares again (a run of n messages costs up to
// ~n³ checks where n messages derived one by one cost ~n).
const maxQuietRun = 64

// DropCache forgets the states the projector keeps between batches and its modification log,
// as an idle acld does (the engines' decoded states, which the log validates, are then read
// again once): the next batch reads the states it changes from the read model.
func (p *Projector) DropCache() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.states.reset()
	p.mods.drop()
	p.handoff.clear()
}

// live reports whether the message at seq is handed to the feed.
func (p *Projector) live(seq uint64) bool {
	return p.feed != nil && p.started.Load() && seq > p.target.Load()
}

// apply applies msgs in one batch; the caller holds mu. quiet, when set, says they are a quiet
// run with this mark (Feed.quiet).
func (p *Projector) apply(msgs []events.Message, quiet *uint64) error {
	applied := p.applied.Load()
	b := p.overlay // an overlay's batch is its state: it accumulates, and is never committed
	if b == nil {
		if p.batch == nil {
			// A batch of a catch-up (4096 messages) takes a few MiB; by default Reset would
			// drop a buffer over 1 MiB, and every batch would grow a new one by doubling.
			p.batch = p.db.pb.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatch))
			p.writer = newWriter(p.db.pb, &p.writes, p.states, &p.handoff)
		}
		p.batch.Reset()
		b = p.batch
	} else if p.writer == nil {
		p.writer = newWriter(p.over, &p.writes, p.states, &p.handoff) // reads the batch through to the DB
	}
	p.writes.reset()
	w := p.writer
	w.reset(b)
	evs, last, err := decodeBatch(msgs, applied, p.decoded)
	if err != nil {
		return err
	}
	defer func() { clear(evs); p.decoded = evs[:0] }() // keep the array, not the events
	if last == applied {
		return nil
	}
	for _, de := range evs {
		if err := w.apply(de.e, de.d, de.from); err != nil {
			p.states.reset()
			return err
		}
	}
	var before *pebble.Snapshot // the read model before the message, for the feed
	if (len(msgs) == 1 && p.live(last)) || quiet != nil {
		before = p.db.pb.NewSnapshot() // the projector is the DB's only writer: this is it
	}
	p.gen.Add(1) // odd: queries taking a snapshot now do not trust what is published
	defer p.gen.Add(1)
	if err := p.commit(w, last); err != nil {
		p.states.reset() // the cached states hold the abandoned batch's effects
		if before != nil {
			before.Close()
		}
		return err
	}
	p.mirrorCommitted(b, applied, last)
	p.mods.record(last, w.touchedHashes())
	p.publish(last, w.tenantSeqs())
	w.committed()
	p.advance(last)
	switch {
	case before != nil:
		j := feedJob{snap: before, seq: last, at: msgs[0].Time, evs: slices.Clone(evs)}
		if quiet != nil {
			j.quiet, j.mark = true, *quiet
		}
		p.feed.hand(j)
	case p.live(last):
		p.feed.dropEach(evs, p.live) // committed together: not announced, counted in the gaps
	}
	return nil
}

// maxRetainedBatch bounds the batch buffer the projector keeps between batches. (A batch large
// enough for Pebble to keep by reference, half the memtable, has its buffer dropped by Commit.)
const maxRetainedBatch = 16 << 20

func (p *Projector) commit(w *writer, last uint64) error {
	if err := w.flush(last); err != nil {
		return err
	}
	if p.overlay != nil {
		return nil // the writes are in the overlay's batch, which reads see at once
	}
	if p.beforeCommit != nil {
		if err := p.beforeCommit(last); err != nil {
			return err
		}
	}
	// NoSync is safe: the batch is atomic in the WAL and carries its applied sequence, so a
	// machine crash loses a suffix of batches that the stream gives again.
	if err := w.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("projections: commit batch up to seq %d: %w", last, err)
	}
	return nil
}

func (p *Projector) advance(seq uint64) { p.applied.Advance(seq) }

// WaitFor returns once the applied sequence reaches seq, or ctx's error.
func (p *Projector) WaitFor(ctx context.Context, seq uint64) error {
	return p.applied.WaitFor(ctx, seq)
}
