package projections

import (
	"context"
	"maps"
	"testing"
)

// TestPublishedState: what the projector publishes (applied sequence, each tenant's stored
// sequence) is what the DB holds, also when a projector starts on an existing DB; and answers
// through the published state equal answers read entirely from the snapshot.
func TestPublishedState(t *testing.T) {
	g := newGenerator(5, "acme", "-dash", "zz")
	for range 300 {
		g.step()
	}
	msgs := messages(g.items)
	dir := t.TempDir()
	db := openDBAt(t, dir)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs, 37)
	fromDB, err := loadPublished(db.pb)
	if err != nil {
		t.Fatal(err)
	}
	got := p.pub.Load()
	if got.applied != fromDB.applied || !maps.Equal(got.tenants, fromDB.tenants) || len(got.tenants) != 3 {
		t.Fatalf("published %+v, DB holds %+v", got, fromDB)
	}
	reopened, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := reopened.pub.Load(); r.applied != got.applied || !maps.Equal(r.tenants, got.tenants) {
		t.Fatalf("a new projector publishes %+v, want %+v", r, got)
	}
	live, plain := NewEngine(db, p, EngineOptions{}), NewEngine(db, nil, EngineOptions{})
	ctx := context.Background()
	for _, tenant := range []string{"acme", "-dash", "zz", "nobody"} {
		for _, pr := range []string{"p0", "p1", "p2"} {
			q := VisibleQuery{Principal: pr, Type: "case", Limit: 1000}
			a, aerr := live.Visible(ctx, tenant, q)
			b, berr := plain.Visible(ctx, tenant, q)
			if codeOf(aerr) != codeOf(berr) || a.Seq != b.Seq || !maps.Equal(toSet(a.IDs), toSet(b.IDs)) {
				t.Fatalf("%s %s: published %+v %v, snapshot %+v %v", tenant, pr, a, aerr, b, berr)
			}
		}
	}
}

func toSet(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}
