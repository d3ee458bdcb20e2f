package projections

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestAnswersMatchTheirSequence queries while the projector commits small batches: every
// answer must show exactly the state at the sequence it reports (a snapshot, and the published
// sequence only when the snapshot holds it), and sequences never go back.
func TestAnswersMatchTheirSequence(t *testing.T) {
	g := newGenerator(1)
	acme := &genTenant{id: "acme", kinds: map[string]string{}, records: map[string][]string{}}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		t.Fatal(err)
	}
	g.emit(acme, events.TenantRef("acme"), preset)
	g.emit(acme, events.PrincipalRef("ann"), events.PrincipalRegisteredV1{Principal: "ann", Kind: aggregates.KindStaff})
	g.emit(acme, events.PrincipalRef("ann"), events.AccessLevelSetV1{Level: aggregates.LevelFull}, events.RoleAssignedV1{Role: "staff"})
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
