package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestOtherInstanceWritesSeen: instance B revokes a role of many principals while instance A
// keeps reading them, so that A reloads each as B's invalidations arrive, some before the stream
// serves B's message. Once B's writes are acknowledged and A has taken their invalidations, A
// decides on B's state: every principal A reads is at the stream's state, and A assigning the
// revoked role writes it again instead of answering that the principal holds it.
func TestOtherInstanceWritesSeen(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"memory", Options{}},
		{"spill", Options{StateDir: "spill"}},
		// Entries dropped and made again while B writes: invalidations of subjects A does
		// not hold at that moment.
		{"evicting", Options{CacheSize: 40}},
		{"evicting spill", Options{CacheSize: 40, StateDir: "spill"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.StateDir != "" {
				c.opts.StateDir = t.TempDir()
			}
			testOtherInstanceWritesSeen(t, c.opts)
		})
	}
}

func testOtherInstanceWritesSeen(t *testing.T, opts Options) {
	e := startEnvWith(t, 2, opts)
	a, b := e.svcs[0], e.svcs[1]
	// Every message is B's (A decides nothing until the end), so A gets each one's invalidation.
	exec := func(s *Service, actor string, cmd aggregates.Command) Result {
		t.Helper()
		cmd.Base().Tenant, cmd.Base().Actor, cmd.Base().CommandID = "acme", actor, newID(t)
		res, err := s.Execute(e.ctx, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	exec(b, aggregates.SystemActor, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	const n = 400
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%03d", i)
	}
	parallel := func(fn func(id string)) {
		var wg sync.WaitGroup
		next := make(chan string)
		for range 8 {
			wg.Go(func() {
				for id := range next {
					fn(id)
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
	}
	parallel(func(id string) {
		exec(b, "admin", &aggregates.RegisterPrincipal{Principal: id, Kind: aggregates.KindStaff})
		exec(b, "admin", &aggregates.AssignRole{Principal: id, Role: "accountant"})
	})
	read := func(ctx context.Context, id string) (*aggregates.Principal, error) {
		en, err := a.cache.entry("acme", events.PrincipalRef(id))
		if err != nil {
			return nil, err
		}
		s, err := a.cache.fresh(ctx, en)
		if err != nil {
			return nil, err
		}
		return s.state.(*aggregates.Principal), nil
	}
	for _, id := range ids {
		if _, err := read(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A's readers reload whatever was invalidated, as a busy instance's commands would.
	ctx, stop := context.WithCancel(e.ctx)
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for ctx.Err() == nil {
				if _, err := read(ctx, ids[rand.IntN(n)]); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	parallel(func(id string) {
		exec(b, "admin", &aggregates.RevokeRole{Principal: id, Role: "accountant"})
	})
	stop()
	readers.Wait()
	// Every message stored was published by B and comes to A as an invalidation.
	last := e.lastSeq()
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if got := a.invalidated.Load(); got < int64(last) {
			return fmt.Errorf("A took %d invalidations of %d messages", got, last)
		}
		return nil
	})
	var behind []string
	for _, id := range ids {
		got, err := read(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := e.state(events.PrincipalRef(id)).(*aggregates.Principal)
		if got.Seq != want.Seq || slices.Contains(got.Roles, "accountant") {
			behind = append(behind, fmt.Sprintf("%s at %d, the stream at %d", id, got.Seq, want.Seq))
		}
	}
	var noops []string
	for _, id := range ids {
		if res := exec(a, "admin", &aggregates.AssignRole{Principal: id, Role: "accountant"}); len(res.Events) == 0 {
			noops = append(noops, id)
		}
	}
	if len(behind) > 0 || len(noops) > 0 {
		t.Fatalf("A's cache is behind B's acknowledged writes: %d principals (%v); A answered %d assignments of the revoked role without writing (%v)",
			len(behind), behind, len(noops), noops)
	}
	// The floors do not pile up: a read reaching one forgets it, and with a spill its follower
	// forgets every one it passes (A never read the tenant).
	eventstest.WaitFor(t, 30*time.Second, func() error {
		a.cache.mu.Lock()
		defer a.cache.mu.Unlock()
		for subject := range a.cache.floors {
			if opts.StateDir != "" || strings.Contains(subject, ".principal.") {
				return fmt.Errorf("floor of %s kept", subject)
			}
		}
		return nil
	})
}

// TestInvalidationBeforeStored: another instance's invalidation that comes before the stream
// serves its message (as a core subscriber may get it) leaves a state read meanwhile stale, not
// fresh: once the message is stored, the next read has it. A's subscription is replaced by
// invalidations given by hand, so that the order is the one that lost the write before.
func TestInvalidationBeforeStored(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		// evicted: A holds p only in its spill, and the spill's follower brings up a state
		// from before the message after the invalidation deleted it (as it does for a
		// registration it reads late). A then reads p first once the message is stored: the
		// spilled state is behind an acknowledged write.
		evicted bool
		// refused: the message is never stored (a batch refused for another item's sequence).
		refused bool
	}{
		{name: "cached"},
		{name: "spilled", opts: Options{StateDir: "spill"}, evicted: true},
		{name: "refused", refused: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.StateDir != "" {
				c.opts.StateDir = t.TempDir()
			}
			e := startEnvWith(t, 2, c.opts)
			a, b := e.svcs[0], e.svcs[1]
			exec := func(s *Service, cmd aggregates.Command) Result { t.Helper(); return e.execAcme(t, s, cmd) }
			exec(b, &aggregates.CreateTenant{Preset: "reconpro",
				Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
			exec(b, &aggregates.RegisterPrincipal{Principal: "p", Kind: aggregates.KindStaff})
			exec(b, &aggregates.AssignRole{Principal: "p", Role: "accountant"})
			ref := events.PrincipalRef("p")
			subject, err := events.Subject("acme", ref)
			if err != nil {
				t.Fatal(err)
			}
			read := func() (*aggregates.Principal, bool) { t.Helper(); return e.readPrincipal(t, a, ref) }
			eventstest.WaitFor(t, 30*time.Second, func() error {
				if p, _ := read(); !slices.Contains(p.Roles, "accountant") {
					return fmt.Errorf("A reads p with roles %v", p.Roles)
				}
				a.cache.mu.Lock()
				en := a.cache.entries[subject]
				a.cache.mu.Unlock()
				if c.evicted && !a.cache.spilled(en) {
					return errors.New("p not spilled yet")
				}
				return nil
			})
			before, _ := read()
			a.mu.Lock()
			if err := a.subs[0].Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			a.mu.Unlock()

			a.cache.invalidate(subject, floorOf(nats.Header{nats.ExpectedLastSubjSeqHdr: {strconv.FormatUint(before.Seq, 10)}}))
			if c.evicted {
				old, err := encodeState(before)
				if err != nil {
					t.Fatal(err)
				}
				a.cache.mu.Lock()
				delete(a.cache.entries, subject)
				err = a.cache.spill.set(subject, old)
				a.cache.mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
			}
			if !c.evicted {
				// Before the message is stored, A reads what the stream has (and may decide
				// on it: the message is not acknowledged yet).
				if p, _ := read(); p.Seq != before.Seq {
					t.Fatalf("before the message is stored A reads p at %d, want %d", p.Seq, before.Seq)
				}
			}
			if c.refused {
				// Every read reads the stream, and decides on what it has; the next write of
				// p brings it above the floor.
				if _, fresh := read(); fresh {
					t.Fatal("a state below the floor is fresh")
				}
				if res := exec(a, &aggregates.AssignRole{Principal: "p", Role: "accountant"}); len(res.Events) != 0 {
					t.Fatalf("A assigned a role p holds: %v", res.Events)
				}
				if _, fresh := read(); fresh {
					t.Fatal("a state below the floor is fresh")
				}
				exec(a, &aggregates.RevokeRole{Principal: "p", Role: "accountant"})
				if p, fresh := read(); !fresh || slices.Contains(p.Roles, "accountant") {
					t.Fatalf("after A's own write p holds %v (fresh: %v)", p.Roles, fresh)
				}
				return
			}
			exec(b, &aggregates.RevokeRole{Principal: "p", Role: "accountant"})
			p, fresh := read()
			if want := e.state(ref).(*aggregates.Principal); p.Seq != want.Seq || slices.Contains(p.Roles, "accountant") || !fresh {
				t.Fatalf("after B's revocation was stored A reads p at %d with %v (fresh: %v), the stream has it at %d", p.Seq, p.Roles, fresh, want.Seq)
			}
		})
	}
}

// TestUnspillNotWhileAwaited: the spill's follower recreates a state from a registration it
// reads after another instance's invalidation deleted the spilled state, then leaves that
// instance's message to the cache (awaited: the subject is cached). The floor is gone once the
// follower passed the message, so a state read from the spill meanwhile could lack it: it is
// not read until the cache spills one that includes the message.
func TestUnspillNotWhileAwaited(t *testing.T) {
	sp, err := openSpill(t.TempDir(), "s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	sp.trusted.Store(true)
	c := newCache(nil, 10, slog.Default())
	c.spill = sp
	ref := events.RecordAggregate("invoice", "i1")
	subject, err := events.Subject("acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(seq uint64, d events.Data) events.Message {
		env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin", CommandID: fmt.Sprintf("c%d", seq)}, d)
		if err != nil {
			t.Fatal(err)
		}
		env.Seq = seq
		return events.Message{Seq: seq, Subject: subject, Events: []events.Envelope{env}}
	}
	follow := func(m events.Message) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.followedLocked(sp, m); err != nil {
			t.Fatal(err)
		}
	}
	// Another instance registered i1 at 3 and assigned it at 5; the invalidation of 5 (floor 4)
	// comes before the follower read either.
	c.invalidate(subject, 4)
	follow(msg(3, events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "invoice", ID: "i1"}}))
	e, err := c.entry("acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	follow(msg(5, events.RecordAssignedV2{Principal: "p1", Relation: "salesperson"}))
	c.mu.Lock()
	floor := c.floorLocked(subject)
	c.mu.Unlock()
	if floor != 0 {
		t.Fatalf("floor %d after the follower passed the message, want none", floor)
	}
	if st, err := sp.get(subject); err != nil || st == nil || stateSeq(st) != 3 {
		t.Fatalf("spilled %v (%v), want the registration's state at 3", st, err)
	}
	if st := c.unspill(e); st != nil {
		t.Fatalf("read the spilled state at %d while message 5 is awaited", stateSeq(st))
	}
	// The cache spills a state that includes 5 (its keep): read again.
	r := aggregates.NewRecord("invoice", "i1")
	r.Exists, r.Seq = true, 5
	b, err := encodeState(r)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	err = sp.set(subject, b)
	sp.keptLocked(subject, 5)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if st := c.unspill(e); st == nil || stateSeq(st) != 5 {
		t.Fatalf("unspill %v once the state at 5 is spilled, want it", st)
	}
}

// TestFollowerCatchesMissedInvalidation: A holds p in memory, then misses B's invalidations (its
// subscription is gone, as when a slow consumer drops them; the reset that follows a drop marks
// only what is cached at that moment, and a reload in the gap before the stream serves B's
// message would be cached as fresh again). The spill's follower reads every stored message in
// order: once it has passed B's revocation, A's state of p is stale and A decides on B's.
func TestFollowerCatchesMissedInvalidation(t *testing.T) {
	e := startEnvWith(t, 2, Options{StateDir: t.TempDir()})
	a, b := e.svcs[0], e.svcs[1]
	exec := func(s *Service, cmd aggregates.Command) Result { t.Helper(); return e.execAcme(t, s, cmd) }
	exec(b, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	exec(b, &aggregates.RegisterPrincipal{Principal: "p", Kind: aggregates.KindStaff})
	last := exec(b, &aggregates.AssignRole{Principal: "p", Role: "accountant"}).Seq
	ref := events.PrincipalRef("p")
	read := func() (*aggregates.Principal, bool) { t.Helper(); return e.readPrincipal(t, a, ref) }
	eventstest.WaitFor(t, 30*time.Second, func() error {
		// Every message so far is B's: A has taken all their invalidations, so the state it
		// reads now stays fresh until the next message of p.
		if n := uint64(a.invalidated.Load()); n < last {
			return fmt.Errorf("A took %d invalidations of %d", n, last)
		}
		if p, fresh := read(); !fresh || !slices.Contains(p.Roles, "accountant") {
			return fmt.Errorf("A reads p with roles %v (fresh: %v)", p.Roles, fresh)
		}
		return nil
	})
	a.mu.Lock()
	for _, sub := range a.subs {
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Unlock()
	res := exec(b, &aggregates.RevokeRole{Principal: "p", Role: "accountant"})
	eventstest.WaitFor(t, 30*time.Second, func() error {
		p, fresh := read()
		if slices.Contains(p.Roles, "accountant") || !fresh {
			return fmt.Errorf("A reads p at %d with %v (fresh: %v) after B's revocation at %d; spill follower at %d",
				p.Seq, p.Roles, fresh, res.Seq, a.cache.spill.pos.Load())
		}
		return nil
	})
	if a.cache.caught.Load() == 0 {
		t.Fatal("A saw the revocation, but not through its follower: the test no longer tests what it says")
	}
	// A decides on B's state: assigning the role again writes it.
	if res := exec(a, &aggregates.AssignRole{Principal: "p", Role: "accountant"}); len(res.Events) == 0 {
		t.Fatal("A answered that p holds a role B revoked")
	}
}

// TestFloorKeptWhenReplicated: on a replicated stream a read may be served by a replica that has
// not stored a message the leader's consumer already delivered to the spill's follower, so the
// follower passing the message must not forget its floor: a reload from that replica would be
// taken as fresh. On a single server the follower and the reads see the same store.
func TestFloorKeptWhenReplicated(t *testing.T) {
	for _, c := range []struct {
		replicated bool
		want       uint64
	}{{false, 0}, {true, 6}} {
		t.Run(fmt.Sprint("replicated=", c.replicated), func(t *testing.T) {
			sp, err := openSpill(t.TempDir(), "s1", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.close()
			sp.trusted.Store(true)
			ca := newCache(nil, 10, slog.Default())
			ca.spill, ca.replicated = sp, c.replicated
			ref := events.RecordAggregate("invoice", "i1")
			subject, err := events.Subject("acme", ref)
			if err != nil {
				t.Fatal(err)
			}
			env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin", CommandID: "c6"},
				events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "invoice", ID: "i1"}})
			if err != nil {
				t.Fatal(err)
			}
			env.Seq = 6
			ca.invalidate(subject, 6)
			ca.mu.Lock()
			defer ca.mu.Unlock()
			if err := ca.followedLocked(sp, events.Message{Seq: 6, Subject: subject, Events: []events.Envelope{env}}); err != nil {
				t.Fatal(err)
			}
			if got := ca.floorLocked(subject); got != c.want {
				t.Fatalf("floor %d after the follower passed the message, want %d", got, c.want)
			}
		})
	}
}

// execAcme carries out cmd on s in tenant acme as its admin (CreateTenant as the system).
func (e *testEnv) execAcme(t *testing.T, s *Service, cmd aggregates.Command) Result {
	t.Helper()
	cmd.Base().Tenant, cmd.Base().Actor, cmd.Base().CommandID = "acme", "admin", newID(t)
	if _, ok := cmd.(*aggregates.CreateTenant); ok {
		cmd.Base().Actor = aggregates.SystemActor
	}
	res, err := s.Execute(e.ctx, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Name(), err)
	}
	return res
}

// readPrincipal reads principal ref of tenant acme through s's cache, as a command would: the
// state, and whether the cache holds it as fresh.
func (e *testEnv) readPrincipal(t *testing.T, s *Service, ref events.AggregateRef) (*aggregates.Principal, bool) {
	t.Helper()
	en, err := s.cache.entry("acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.cache.fresh(e.ctx, en)
	if err != nil {
		t.Fatal(err)
	}
	return snap.state.(*aggregates.Principal), snap.gen == en.gen.Load() && notBehind(en, snap)
}
