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
	g, acme := staffTenant(t, "bo", aggregates.LevelLimited)
	g.emit(acme, events.RecordAggregate("case", "x"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "x"}})
	setup := len(g.items) // at seq setup, bo is not assigned to x
	const flips = 600
	for i := range flips {
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
	eng := NewEngine(db, p, EngineOptions{})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := setup; i < len(msgs); i++ {
			if err := p.ApplyMessages(msgs[i : i+1]); err != nil {
				t.Errorf("apply: %v", err)
				return
			}
		}
	}()
	ctx := context.Background()
	q := CheckQuery{Principal: "bo", Permission: "case.view", Record: &events.RecordRef{Type: "case", ID: "x"}}
	for n := 0; ; n++ {
		a, err := eng.Check(ctx, "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		// Assigned after an odd number of flips: seq setup+1 assigns, setup+2 unassigns, ...
		if want := (a.Seq-uint64(setup))%2 == 1; a.Allowed != want {
			t.Fatalf("check %d at seq %d: allowed %v, want %v", n, a.Seq, a.Allowed, want)
		}
		if a.Seq == uint64(len(msgs)) {
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
