package projections

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// staffTenant starts a generator with tenant acme (preset trackops) and one staff member
// holding the staff role at level.
func staffTenant(t *testing.T, principal, level string) (*generator, *genTenant) {
	t.Helper()
	g := newGenerator(1)
	acme := &genTenant{id: "acme", kinds: map[string]string{}, records: map[string][]string{}}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		t.Fatal(err)
	}
	g.emit(acme, events.TenantRef("acme"), preset)
	g.emit(acme, events.PrincipalRef(principal), events.PrincipalRegisteredV1{Principal: principal, Kind: aggregates.KindStaff})
	g.emit(acme, events.PrincipalRef(principal), events.AccessLevelSetV1{Level: level}, events.RoleAssignedV1{Role: "staff"})
	return g, acme
}

// TestAnswersMatchTheirSequence queries while the projector commits small batches: every
// answer must show exactly the state at the sequence it reports (a snapshot, and the published
// sequence only when the snapshot holds it), and sequences never go back.
func TestAnswersMatchTheirSequence(t *testing.T) {
	g, acme := staffTenant(t, "ann", aggregates.LevelFull)
	setup := len(g.items)
	const cases = 400
	for i := range cases {
		id := fmt.Sprintf("c%04d", i)
		g.emit(acme, events.RecordAggregate("case", id), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: id}})
	}
	msgs := messages(g.items)
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs[:setup], setup)
	eng := NewEngine(db, p, EngineOptions{})

	var wg sync.WaitGroup
	defer wg.Wait() // a failed check must not leave the writer running into a closed DB
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := setup; i < len(msgs); i += 3 {
			if err := p.ApplyMessages(msgs[i:min(i+3, len(msgs))]); err != nil {
				t.Errorf("apply: %v", err)
				return
			}
		}
	}()
	ctx := context.Background()
	var last uint64
	for n := 0; last < uint64(len(msgs)); n++ {
		a, err := eng.Visible(ctx, "acme", VisibleQuery{Principal: "ann", Type: "case", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if a.Seq < last {
			t.Fatalf("answer %d at seq %d after one at %d", n, a.Seq, last)
		}
		if want := int(a.Seq) - setup; len(a.IDs) != want {
			t.Fatalf("answer at seq %d lists %d cases, want %d", a.Seq, len(a.IDs), want)
		}
		last = a.Seq
	}
}

// TestCachedStatesFollowWrites checks a record that flips between assigned and not while
// queries run: every check answer must match the state at the sequence it reports, whether the
// state came from Pebble or from the cache validated by the projector's modification log.
func TestCachedStatesFollowWrites(t *testing.T) {
	f := newFlips(t, 600)
	f.run(t, nil)
}

// flips is a record x that flips between bo assigned and not, after setup messages (at seq
// setup bo is not assigned), with a projector over the setup and an engine.
type flips struct {
	msgs  []events.Message
	setup int
	p     *Projector
	eng   *Engine
}

func newFlips(t *testing.T, n int) *flips {
	g, acme := staffTenant(t, "bo", aggregates.LevelLimited)
	g.emit(acme, events.RecordAggregate("case", "x"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "x"}})
	setup := len(g.items)
	for i := range n {
		if i%2 == 0 {
			g.emit(acme, events.RecordAggregate("case", "x"), events.RecordAssignedV2{Principal: "bo", Relation: "assignee"})
		} else {
			g.emit(acme, events.RecordAggregate("case", "x"), events.RecordUnassignedV2{Principal: "bo", Relation: "assignee"})
		}
	}
	msgs := messages(g.items)
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs[:setup], setup)
	return &flips{msgs: msgs, setup: setup, p: p, eng: NewEngine(db, p, EngineOptions{})}
}

var flipsCheck = CheckQuery{Principal: "bo", Permission: "case.view", Record: &events.RecordRef{Type: "case", ID: "x"}}

// run applies the messages not applied yet one at a time, calling after(i) after message i,
// while checks run until the last: each must answer the state at its sequence.
func (f *flips) run(t *testing.T, after func(i int)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := f.setup; i < len(f.msgs); i++ {
			if err := f.p.ApplyMessages(f.msgs[i : i+1]); err != nil {
				t.Errorf("apply: %v", err)
				return
			}
			if after != nil {
				after(i)
			}
		}
	}()
	ctx := context.Background()
	for n := 0; ; n++ {
		a, err := f.eng.Check(ctx, "acme", flipsCheck)
		if err != nil {
			t.Fatal(err)
		}
		// Assigned after an odd number of flips: seq setup+1 assigns, setup+2 unassigns, ...
		if want := (a.Seq-uint64(f.setup))%2 == 1; a.Allowed != want {
			t.Fatalf("check %d at seq %d: allowed %v, want %v", n, a.Seq, a.Allowed, want)
		}
		if a.Seq == uint64(len(f.msgs)) {
			break
		}
	}
}

// TestOldViewIgnoresNewerCachedState: a query still on an older snapshot must not take a state
// that a newer query cached after the projector wrote it, even though the modification log
// shows no write since that newer state.
func TestOldViewIgnoresNewerCachedState(t *testing.T) {
	g, acme := staffTenant(t, "bo", aggregates.LevelLimited)
	g.emit(acme, events.RecordAggregate("case", "x"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "x"}})
	setup := len(g.items)
	g.emit(acme, events.RecordAggregate("case", "x"), events.RecordAssignedV2{Principal: "bo", Relation: "assignee"})
	msgs := messages(g.items)
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs[:setup], setup)
	eng := NewEngine(db, p, EngineOptions{})
	ref := &events.RecordRef{Type: "case", ID: "x"}
	old, err := eng.view("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer old.close()
	if err := p.ApplyMessages(msgs[setup:]); err != nil {
		t.Fatal(err)
	}
	a, err := eng.Check(context.Background(), "acme", CheckQuery{Principal: "bo", Permission: "case.view", Record: ref})
	if err != nil || !a.Allowed {
		t.Fatalf("check after the assignment: %+v, %v; want allowed", a, err)
	}
	d, err := aggregates.Check(old, "bo", "case.view", ref)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatalf("the view at seq %d answers allowed: it read the state cached at seq %d", old.seq, a.Seq)
	}
}

// TestDropCacheKeepsAnswers: the engine's decoded states and the projector's states and
// modification log dropped (an idle acld's drop) while queries and writes run leave every check
// answer matching the state at its sequence, and the caches empty right after a drop.
func TestDropCacheKeepsAnswers(t *testing.T) {
	f := newFlips(t, 200)
	p, eng := f.p, f.eng
	if _, err := eng.Check(context.Background(), "acme", flipsCheck); err != nil {
		t.Fatal(err)
	}
	cached := func() (n int) {
		for i := range eng.decoded.shards {
			s := &eng.decoded.shards[i]
			s.mu.RLock()
			n += len(s.m)
			s.mu.RUnlock()
		}
		return n
	}
	if cached() == 0 {
		t.Fatal("a check cached no state")
	}
	eng.DropCache()
	if n := cached(); n != 0 {
		t.Fatalf("%d states cached after the drop", n)
	}
	applyAll(t, p, f.msgs[f.setup:f.setup+1], 1)
	if len(p.states.aggs) == 0 || len(p.mods.last) == 0 {
		t.Fatal("the projector kept no state and logged no write")
	}
	p.DropCache()
	if len(p.states.aggs) != 0 || len(p.mods.last) != 0 || p.mods.floor != uint64(f.setup+1) {
		t.Fatalf("after the projector's drop: %d states, %d logged writes, floor %d", len(p.states.aggs), len(p.mods.last), p.mods.floor)
	}
	f.run(t, func(i int) {
		if i%7 == 0 {
			eng.DropCache()
		}
		if i%5 == 0 {
			p.DropCache()
		}
	})
}
