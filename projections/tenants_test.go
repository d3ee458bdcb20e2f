package projections

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestTenantsNeverMix builds tenants whose names prefix one another and whose principals and
// records share ids, then checks that every key belongs to one tenant, that each tenant's
// answers are its own oracle's, and that ids known only to another tenant are not_found.
func TestTenantsNeverMix(t *testing.T) {
	tenants := []string{"acme", "acme2", "acme-x"}
	g := newGenerator(21, tenants...)
	for range 600 {
		g.step()
	}
	// One principal and one record that exist in acme only.
	only := g.tenants[0]
	g.emit(only, events.PrincipalRef("solo"), events.PrincipalRegisteredV1{Principal: "solo", Kind: aggregates.KindStaff})
	g.emit(only, events.RecordAggregate("case", "solo-case"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "solo-case"}})
	msgs := messages(g.items)
	db := onePass(t, msgs)
	eng := NewEngine(db, nil, EngineOptions{})
	w := world(t, msgs)

	it, err := db.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if bytes.Equal(k, appliedKey) || bytes.Equal(k, holdersKey) {
			continue
		}
		tn, _, _ := bytes.Cut(k, []byte{sep})
		if !slices.Contains(tenants, string(tn)) {
			t.Fatalf("key %q belongs to no tenant", k)
		}
	}
	it.Close()

	for _, tenant := range slices.Sorted(maps.Keys(w)) {
		d := &diff{t: t, eng: eng, tenant: tenant, m: w[tenant]}
		d.visible()
		d.principals()
	}

	ctx := context.Background()
	solo := &events.RecordRef{Type: "case", ID: "solo-case"}
	tests := []struct {
		tenant string
		q      CheckQuery
		want   aggregates.Code
	}{
		{"acme2", CheckQuery{Principal: "solo", Permission: "case.view"}, aggregates.CodeNotFound},
		{"acme-x", CheckQuery{Principal: "p0", Permission: "case.view", Record: solo}, aggregates.CodeNotFound},
		{"acm", CheckQuery{Principal: "p0", Permission: "case.view"}, aggregates.CodeNotFound},
		{"acme", CheckQuery{Principal: "solo", Permission: "case.view", Record: solo}, ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.tenant, tc.q.Principal), func(t *testing.T) {
			_, err := eng.Check(ctx, tc.tenant, tc.q)
			if codeOf(err) != tc.want {
				t.Fatalf("check in %s: %v, want code %q", tc.tenant, err, tc.want)
			}
		})
	}
	for _, tenant := range tenants[1:] {
		for _, typ := range []string{"case", "user"} {
			a, err := eng.Visible(ctx, tenant, VisibleQuery{Principal: "p0", Type: typ, Limit: 1000})
			if err != nil {
				continue // p0 may not see that type at all
			}
			if slices.Contains(a.IDs, "solo") || slices.Contains(a.IDs, "solo-case") {
				t.Fatalf("visible in %s lists acme's records: %v", tenant, a.IDs)
			}
		}
	}
}
