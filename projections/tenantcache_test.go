package projections

import (
	"context"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestTenantCacheSharedBetweenEngines: engines over two models holding the same tenant bytes
// share one decoded tenant through a TenantCache (as replay's as_of engines do), an engine over
// a model where the tenant changed decodes its own and answers by it, and engines without the
// cache decode each their own.
func TestTenantCacheSharedBetweenEngines(t *testing.T) {
	g, acme := staffTenant(t, "ann", aggregates.LevelLimited)
	g.emit(acme, events.RecordAggregate("case", "c1"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "c1", Assignees: []events.Assignee{{Principal: "ann", Relation: "assignee"}}}})
	setup := messages(g.items)
	g.emit(acme, events.TenantRef("acme"), events.RolePermissionRevokedV1{Role: "staff", Grant: events.Grant{Permission: "case.view", Scope: aggregates.ScopeAll}})
	changed := messages(g.items)

	before1, before2, after := onePass(t, setup), onePass(t, setup), onePass(t, changed)
	tenantOf := func(e *Engine) *aggregates.Tenant {
		t.Helper()
		v, err := e.view("acme")
		if err != nil {
			t.Fatal(err)
		}
		defer v.close()
		return v.t
	}
	mayView := func(e *Engine) bool {
		t.Helper()
		a, err := e.Check(context.Background(), "acme", CheckQuery{Principal: "ann", Permission: "case.view", Record: &events.RecordRef{Type: "case", ID: "c1"}})
		if err != nil {
			t.Fatal(err)
		}
		return a.Allowed
	}

	shared := NewTenantCache(1 << 20)
	e1 := NewEngine(before1, nil, EngineOptions{Tenants: shared})
	e2 := NewEngine(before2, nil, EngineOptions{Tenants: shared})
	e3 := NewEngine(after, nil, EngineOptions{Tenants: shared})
	if t1, t2 := tenantOf(e1), tenantOf(e2); t1 != t2 {
		t.Errorf("engines over the same tenant bytes decoded it twice")
	}
	if t1, t3 := tenantOf(e1), tenantOf(e3); t1 == t3 || t3.Seq <= t1.Seq {
		t.Errorf("the changed tenant was taken from the cache: seq %d, before %d", t3.Seq, t1.Seq)
	}
	if !mayView(e1) || !mayView(e2) {
		t.Errorf("ann may not view her assigned case before the revocation")
	}
	if mayView(e3) {
		t.Errorf("ann may view her case after case.view was revoked from staff")
	}
	if tenantOf(NewEngine(before1, nil, EngineOptions{})) == tenantOf(NewEngine(before2, nil, EngineOptions{})) {
		t.Errorf("engines without a shared cache share a tenant")
	}
}

// TestTenantCacheBound: past its bytes the cache drops the least recently used tenant, and
// keeps the last one whatever its size.
func TestTenantCacheBound(t *testing.T) {
	a, b, c := &aggregates.Tenant{ID: "a"}, &aggregates.Tenant{ID: "b"}, &aggregates.Tenant{ID: "c"}
	tc := NewTenantCache(20)
	tc.put("a", []byte("0123456789"), a)
	tc.put("b", []byte("abcdefghij"), b)
	if tc.get("a", []byte("0123456789")) != a || tc.get("b", []byte("abcdefghij")) != b {
		t.Fatal("lost an entry within the bound")
	}
	if tc.get("a", []byte("0123456780")) != nil {
		t.Fatal("found a tenant by other bytes")
	}
	tc.put("c", []byte("klmnopqrst"), c) // a was used least recently
	if tc.get("a", []byte("0123456789")) != nil || tc.get("b", []byte("abcdefghij")) != b || tc.get("c", []byte("klmnopqrst")) != c {
		t.Fatal("the bound dropped the wrong entry")
	}
	big := make([]byte, 100)
	tc.put("d", big, a)
	if tc.get("d", big) != a || len(tc.entries) != 1 {
		t.Fatalf("a tenant larger than the bound: %d entries", len(tc.entries))
	}
}
