package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// BulkLoad lets live followers (the read model's projector, the audit index) yield the CPU to a
// bulk load (commands' batch requests) while it runs, within a bounded lag. The stream is the
// source of truth and a command is acknowledged once stored, so a follower may fall behind; it
// catches up after the load in full slices, which costs less per message than following the
// load's appends as they come, and meanwhile the load has the cores to itself.
//
// A follower holds while the load runs (a batch began or ended less than Quiet ago), it is
// fewer than MaxLag messages behind the load's last stored sequence, and no reader waits for a
// sequence it has not reached (Want: a query with min_seq, which is then answered as soon as the
// follower has caught up to it). When it holds, its consumer is stopped, so the server delivers
// nothing to it either; it starts again from where it was.
type BulkLoad struct {
	// MaxLag bounds how far behind a held follower may fall, in messages; a follower this far
	// behind catches up to within MaxLag/2 before it holds again. 0 holds nothing.
	MaxLag uint64
	// Quiet is how long after its last batch a load counts as running.
	Quiet time.Duration

	mu      sync.Mutex
	until   time.Time     // the load runs until then
	last    uint64        // the highest sequence the load stored
	wanted  uint64        // the highest sequence a reader waited for
	batches int           // batches under way
	changed chan struct{} // closed and replaced when anything above changes
}

// errYield ends a held follower's consumer.
var errYield = errors.New("events: follower yields to a bulk load")

// Begin notes that a batch of the load starts.
func (b *BulkLoad) Begin() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	b.until = time.Now().Add(b.Quiet)
	b.wake()
}

// End notes that a batch ended, its commands stored up to sequence last (0: none).
func (b *BulkLoad) End(last uint64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches--
	b.until = time.Now().Add(b.Quiet)
	b.last = max(b.last, last)
	b.wake()
}

// Want notes that a reader waits for seq: held followers go on until they have applied it.
func (b *BulkLoad) Want(seq uint64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq > b.wanted {
		b.wanted = seq
		b.wake()
	}
}

// Running reports whether the load runs now: a batch is under way or ended less than Quiet ago.
func (b *BulkLoad) Running() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leftLocked() > 0
}

// leftLocked is how long the load still counts as running (<= 0: it ended).
func (b *BulkLoad) leftLocked() time.Duration {
	left := time.Until(b.until)
	if b.batches > 0 {
		left = max(left, b.Quiet)
	}
	return left
}

// wake tells held followers to look again; the caller holds mu.
func (b *BulkLoad) wake() {
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

// hold reports whether a follower that has applied up to at should hold now (lag: the lag up
// to which it may), and if so a channel closed on a change and how long until the load counts
// as ended.
func (b *BulkLoad) hold(at, lag uint64) (bool, <-chan struct{}, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	left := b.leftLocked()
	if b.MaxLag == 0 || left <= 0 || b.wanted > at || b.last > at+lag {
		return false, nil, 0
	}
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return true, b.changed, left
}

// Yielding returns f whose Follow holds while b says so (see BulkLoad); with b nil it passes
// through.
func (b *BulkLoad) Yielding(f Follower) *Yielding { return &Yielding{f: f, load: b} }

// Yielding is a Follower that yields to a bulk load.
type Yielding struct {
	f    Follower
	load *BulkLoad
}

// LastSeq is the underlying follower's (a *Store or a *Fanout).
func (y *Yielding) LastSeq(ctx context.Context) (uint64, error) {
	ls, ok := y.f.(interface {
		LastSeq(context.Context) (uint64, error)
	})
	if !ok {
		return 0, errors.New("events: the follower does not tell the last sequence")
	}
	return ls.LastSeq(ctx)
}

// Follow follows from from like the store's Follow, stopping its consumer while the load says
// hold and starting it again after the last message fn took. A follower let go because it fell
// MaxLag behind catches up to within MaxLag/2 before it holds again.
func (y *Yielding) Follow(ctx context.Context, from uint64, fn func([]Message) error) error {
	if y.load == nil {
		return y.f.Follow(ctx, from, fn)
	}
	next := from // the first sequence fn has not taken
	for {
		err := y.f.Follow(ctx, next, func(ms []Message) error {
			if hold, _, _ := y.load.hold(next-1, y.load.MaxLag/2); hold {
				return errYield
			}
			if err := fn(ms); err != nil {
				return err
			}
			next = ms[len(ms)-1].Seq + 1
			return nil
		})
		if !errors.Is(err, errYield) {
			return err
		}
		if err := y.wait(ctx, next-1); err != nil {
			return fmt.Errorf("events: follow from %d: %w", next, err)
		}
	}
}

// wait holds until the load lets a follower at at go on, or ctx ends.
func (y *Yielding) wait(ctx context.Context, at uint64) error {
	for {
		hold, changed, left := y.load.hold(at, y.load.MaxLag)
		if !hold {
			return nil
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}
