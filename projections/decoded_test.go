package projections

import (
	"context"
	"testing"

	"github.com/acl-es/acl/aggregates"
)

// TestDecodedCacheCollision: the decoded cache is keyed by the hash of the state key; an entry
// under a key's hash that holds another state (a collision, planted here) is a miss, never
// that other state.
func TestDecodedCacheCollision(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	ctx := context.Background()
	carol, err := f.eng.Permissions(ctx, "acme", PermissionsQuery{Principal: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.eng.view("acme")
	if err != nil {
		t.Fatal(err)
	}
	p := v.Principal("carol")
	v.close()
	if p == nil || carol.Kind != aggregates.KindClientContact {
		t.Fatalf("carol: %+v", carol)
	}
	for _, plant := range []decodedEntry{
		{seq: p.Seq, v: p, validAt: ^uint64(0) >> 1, tenant: "acme"},                                   // another principal
		{seq: p.Seq, v: &aggregates.Record{Type: "case", ID: "bob"}, validAt: 1 << 62, tenant: "acme"}, // a record with the id
		{seq: p.Seq, v: &aggregates.Principal{ID: "bob"}, validAt: 1 << 62, tenant: "other"},           // another tenant's bob
	} {
		f.eng.decoded.put(keyHash(principalKey(nil, "acme", "bob")), plant)
		bob, err := f.eng.Permissions(ctx, "acme", PermissionsQuery{Principal: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if bob.Kind != aggregates.KindStaff || bob.Level != aggregates.LevelLimited {
			t.Fatalf("bob read as the planted %T: %+v", plant.v, bob)
		}
	}
}
