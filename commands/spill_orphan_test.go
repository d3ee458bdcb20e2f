package commands

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// orphanCache is a cache with a spill (no store) and helpers for one record's states.
type orphanCache struct {
	t   *testing.T
	c   *cache
	sp  *spill
	ref events.AggregateRef
}

func newOrphanCache(t *testing.T) *orphanCache {
	c := newCache(nil, 10, slog.Default())
	sp, err := openSpill(t.TempDir(), "s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.spill, c.opened = sp, sp
	t.Cleanup(c.closeSpill)
	sp.trusted.Store(true)
	return &orphanCache{t: t, c: c, sp: sp, ref: events.RecordAggregate("invoice", "i1")}
}

func (o *orphanCache) rec(seq uint64, client string) *aggregates.Record {
	r := aggregates.NewRecord("invoice", "i1")
	r.Exists, r.Client, r.Seq = true, client, seq
	return r
}

func (o *orphanCache) entry() *entry {
	o.t.Helper()
	e, err := o.c.entry("acme", o.ref)
	if err != nil {
		o.t.Fatal(err)
	}
	return e
}

// base is a snapshot of the entry read now (its generation and the cache's invalidations).
func (o *orphanCache) base(e *entry) *snapshot {
	_, _, inv := o.c.bounds(e.subject)
	return &snapshot{gen: e.gen.Load(), inv: inv}
}

// drop takes the entry out of the cache, as evictLocked does.
func (o *orphanCache) drop(e *entry) {
	o.c.mu.Lock()
	delete(o.c.entries, e.subject)
	o.c.mu.Unlock()
}

// spilled returns the spilled state of the record, or nil.
func (o *orphanCache) spilled() *aggregates.Record {
	o.t.Helper()
	subject, err := events.Subject("acme", o.ref)
	if err != nil {
		o.t.Fatal(err)
	}
	st, err := o.sp.get(subject)
	if err != nil {
		o.t.Fatal(err)
	}
	if st == nil {
		return nil
	}
	return st.(*aggregates.Record)
}

// TestSpillKeepsOrphans: a state whose entry the cache dropped while a command used it (an
// orphan) is spilled when no entry of its subject came since, instead of being lost to the
// next command's read of the stream; not over a newer state the cache spilled, nor once the
// follower processed a newer message of the subject; and a stale entry's state is still not.
func TestSpillKeepsOrphans(t *testing.T) {
	o := newOrphanCache(t)
	e := o.entry()
	base := o.base(e)
	o.drop(e)
	o.c.keep(e, o.rec(5, "orphan"), base, true)
	if got := o.spilled(); got == nil || got.Seq != 5 || got.Client != "orphan" {
		t.Fatalf("spilled %+v, want the orphan's state at 5", got)
	}

	newer := o.entry()
	o.c.keep(newer, o.rec(9, "newer"), o.base(newer), true)
	o.drop(newer)
	o.c.keep(e, o.rec(7, "older orphan"), base, true)
	if got := o.spilled(); got == nil || got.Seq != 9 {
		t.Fatalf("spilled %+v, want the newer state at 9, not the older orphan's", got)
	}

	env, err := events.New(events.Meta{Tenant: "acme", Aggregate: o.ref, Actor: "admin", CommandID: "c12"},
		events.RecordAssignedV2{Principal: "p1", Relation: "salesperson"})
	if err != nil {
		t.Fatal(err)
	}
	env.Seq = 12
	o.c.mu.Lock()
	err = o.c.followedLocked(o.sp, events.Message{Seq: 12, Subject: e.subject, Events: []events.Envelope{env}})
	o.c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	o.c.keep(e, o.rec(10, "passed orphan"), base, true)
	if got := o.spilled(); got != nil && got.Seq < 12 {
		t.Fatalf("spilled %+v after the follower processed message 12", got)
	}

	stale := o.entry()
	staleBase := o.base(stale)
	stale.gen.Add(1)
	o.c.keep(stale, o.rec(20, "stale"), staleBase, true)
	if got := o.spilled(); got != nil && got.Client == "stale" {
		t.Fatalf("spilled the state of an entry invalidated since: %+v", got)
	}
}

// TestSpillOrphanAfterInvalidation is the first wrong spill last round's review found: another
// instance's write comes (its invalidation deletes the spilled state) while a command holds an
// entry the cache dropped; that command's state, older than the write, must not be spilled
// back, or the next entry would read it with what the write revoked. With the floor the write's
// invalidation carries, and without one (a writer that states no expected sequence).
func TestSpillOrphanAfterInvalidation(t *testing.T) {
	for _, floor := range []uint64{6, 0} {
		t.Run(fmt.Sprintf("floor %d", floor), func(t *testing.T) {
			o := newOrphanCache(t)
			e := o.entry()
			o.c.keep(e, o.rec(5, "held"), o.base(e), true)
			base := o.base(e)
			o.drop(e)
			o.c.invalidate(e.subject, floor) // another instance's message 6 of the subject
			o.c.keep(e, o.rec(5, "orphan"), base, true)
			if got := o.spilled(); got != nil {
				t.Fatalf("spilled %+v after another instance's write to it", got)
			}
			// A state read after the invalidation but before the stream served the message
			// (below its floor) is not kept either.
			e = o.entry()
			base = o.base(e)
			o.drop(e)
			o.c.keep(e, o.rec(5, "below the floor"), base, true)
			if got := o.spilled(); got != nil && floor > 0 {
				t.Fatalf("spilled %+v below the floor %d", got, floor)
			}
			// A state read after the invalidation is kept again (at or above the floor).
			e = o.entry()
			base = o.base(e)
			o.drop(e)
			o.c.keep(e, o.rec(6, "after"), base, true)
			if got := o.spilled(); got == nil || got.Seq != 6 {
				t.Fatalf("spilled %+v, want the state at 6 read after the invalidation", got)
			}
		})
	}
}

// TestSpillOrphanKeptNotesFull is the second wrong spill the review found: with the spill's
// notes of the cache's own newer writes full (maxKept), an older orphan overwrote a newer
// state. The spill itself is asked.
func TestSpillOrphanKeptNotesFull(t *testing.T) {
	o := newOrphanCache(t)
	o.c.mu.Lock()
	for i := range maxKept {
		o.sp.keptLocked(fmt.Sprintf("acl.events.acme.record.invoice.x%d", i), 100)
	}
	o.c.mu.Unlock()
	e := o.entry()
	base := o.base(e)
	o.drop(e)
	newer := o.entry()
	o.c.keep(newer, o.rec(9, "newer"), o.base(newer), true)
	o.c.mu.Lock()
	_, noted := o.sp.kept[newer.subject]
	o.c.mu.Unlock()
	if noted {
		t.Fatal("the newer write was noted: the notes are not full")
	}
	o.drop(newer)
	o.c.keep(e, o.rec(7, "older orphan"), base, true)
	if got := o.spilled(); got == nil || got.Seq != 9 || got.Client != "newer" {
		t.Fatalf("spilled %+v, want the newer state at 9", got)
	}
}
