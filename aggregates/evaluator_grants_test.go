package aggregates

import (
	"slices"
	"testing"

	"github.com/acl-es/acl/events"
)

func TestEffectiveGrantsProvenance(t *testing.T) {
	w := trackopsWorld(t)
	fred := w.m.Principals["fred"]
	direct := w.principal("fred", events.PermissionGrantedV1{Grant: events.Grant{Permission: "expense.view", Scope: ScopeOwn}})
	w.principal("fred", events.PermissionDeniedV1{Permission: "review.edit"})
	gs := EffectiveGrants(w.m.T, fred)
	var sawDirect, sawRole bool
	for i, g := range gs {
		if i > 0 && grantUseLess(gs[i-1], g) > 0 {
			t.Errorf("not sorted at %d: %+v", i, gs)
		}
		if g.Permission == "review.edit" {
			t.Errorf("denied permission listed: %+v", g)
		}
		if g.NarrowedFrom != "" || g.Unscoped {
			t.Errorf("effective grants are before narrowing: %+v", g)
		}
		switch {
		case g.Permission == "expense.view" && g.Source == "direct":
			sawDirect = true
			if want := []string{direct, fred.Prov["level"]}; !equalStrings(g.Events, want) {
				t.Errorf("direct grant events %v, want %v", g.Events, want)
			}
		case g.Permission == "invoice.view" && g.Source == "role:staff":
			sawRole = true
			want := []string{fred.Prov["role:staff"], w.m.T.Roles["staff"].GrantEvents["invoice.view|all"], fred.Prov["level"]}
			if !equalStrings(g.Events, want) {
				t.Errorf("role grant events %v, want %v", g.Events, want)
			}
		}
	}
	if !sawDirect || !sawRole {
		t.Errorf("missing direct or role grant in %+v", gs)
	}
	if gs := EffectiveGrants(w.m.T, nil); gs == nil || len(gs) != 0 {
		t.Errorf("nil principal: %#v", gs)
	}
}

func TestNarrowedGrants(t *testing.T) {
	w := trackopsWorld(t)
	cases := []struct {
		principal, perm string
		want            []GrantUse // only Scope, NarrowedFrom, Unscoped are compared
	}{
		{"fred", "invoice.view", []GrantUse{{Scope: ScopeAll}}},
		{"lou", "invoice.view", []GrantUse{{Scope: ScopeUnitLocation, NarrowedFrom: ScopeAll}}},
		{"lou", "report.view", []GrantUse{{Scope: ScopeAll, Unscoped: true}}},
		{"lim", "invoice.view", []GrantUse{{Scope: ScopeAssigned, NarrowedFrom: ScopeAll}}},
		{"lim", "client.view", []GrantUse{{Scope: ScopeAll}}},
		{"cc1", "invoice.view", []GrantUse{{Scope: ScopeClient, NarrowedFrom: ScopeAll}}},
		{"cc1l", "invoice.view", []GrantUse{{Scope: ScopeAssigned, NarrowedFrom: ScopeAll}}},
		{"dis", "invoice.view", []GrantUse{}},
		{"noinv", "invoice.view", []GrantUse{}},
	}
	for _, c := range cases {
		t.Run(c.principal+" "+c.perm, func(t *testing.T) {
			got := NarrowedGrants(w.m.T, w.m.Principals[c.principal], c.perm)
			if got == nil || len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i, g := range got {
				want := c.want[i]
				if g.Permission != c.perm || g.Scope != want.Scope || g.NarrowedFrom != want.NarrowedFrom || g.Unscoped != want.Unscoped {
					t.Errorf("got %+v, want %+v", g, want)
				}
			}
		})
	}
}

// TestAnyNarrowedScope: for every principal and permission of the world, the scopes
// AnyNarrowedScope offers are exactly NarrowedGrants' scopes, and it stops at the first accepted.
func TestAnyNarrowedScope(t *testing.T) {
	w := trackopsWorld(t)
	perms := []string{"invoice.view", "invoice.edit", "client.view", "report.view", "case.view", "expense.view"}
	for id, p := range w.m.Principals {
		for _, perm := range perms {
			var want []string
			for _, g := range NarrowedGrants(w.m.T, p, perm) {
				want = append(want, g.Scope)
			}
			var got []string
			if AnyNarrowedScope(w.m.T, p, perm, func(scope string) bool { got = append(got, scope); return false }) {
				t.Errorf("%s %s: true when fn accepts nothing", id, perm)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: scopes %v; NarrowedGrants gives %v", id, perm, got, want)
			}
			calls := 0
			ok := AnyNarrowedScope(w.m.T, p, perm, func(string) bool { calls++; return true })
			if ok != (len(want) > 0) || calls > 1 {
				t.Errorf("%s %s: accepting all gave %v after %d calls; %d grants", id, perm, ok, calls, len(want))
			}
		}
	}
}

// TestNarrowScopeTable walks kind x level x scope for a permission with and without policy
// exceptions.
func TestNarrowScopeTable(t *testing.T) {
	tn := NewTenant("x")
	tn.Policy.Unscoped = []string{"report.view"}
	tn.Policy.Limited = []events.LimitedException{{Permission: "client.view", Kinds: []string{KindStaff, KindClientContact}}}
	cases := []struct {
		kind, level, perm, scope string
		want                     string
		unscoped                 bool
	}{
		{KindStaff, LevelFull, "case.view", ScopeAll, ScopeAll, false},
		{KindStaff, LevelFullLocation, "case.view", ScopeAll, ScopeUnitLocation, false},
		{KindStaff, LevelFullLocation, "case.view", ScopeUnitTeam, ScopeUnitTeam, false},
		{KindStaff, LevelFullLocation, "report.view", ScopeAll, ScopeAll, true},
		{KindStaff, LevelLimited, "case.view", ScopeAll, ScopeAssigned, false},
		{KindStaff, LevelLimited, "case.view", ScopeClient, ScopeAssigned, false},
		{KindStaff, LevelLimited, "case.view", ScopeUnitArea, ScopeAssigned, false},
		{KindStaff, LevelLimited, "case.view", ScopeOwn, ScopeOwn, false},
		{KindStaff, LevelLimited, "report.view", ScopeAll, ScopeAssigned, false},
		{KindStaff, LevelLimited, "client.view", ScopeAll, ScopeAll, false},
		{KindEmployee, LevelLimited, "client.view", ScopeAll, ScopeAssigned, false},
		{KindClientContact, LevelFull, "case.view", ScopeAll, ScopeClient, false},
		{KindClientContact, LevelFull, "case.view", ScopeAssigned, ScopeAssigned, false},
		{KindClientContact, LevelFullLocation, "case.view", ScopeAll, ScopeClient, false},
		{KindClientContact, LevelFullLocation, "report.view", ScopeAll, ScopeClient, false},
		{KindClientContact, LevelLimited, "case.view", ScopeAll, ScopeAssigned, false},
		{KindClientContact, LevelLimited, "client.view", ScopeAll, ScopeClient, false},
	}
	for _, c := range cases {
		p := &Principal{ID: "p", Kind: c.kind, Level: c.level}
		got, unscoped := NarrowScope(tn, p, c.perm, c.scope)
		if got != c.want || unscoped != c.unscoped {
			t.Errorf("%s %s %s %s: got %s %v, want %s %v", c.kind, c.level, c.perm, c.scope, got, unscoped, c.want, c.unscoped)
		}
	}
}

func TestHolds(t *testing.T) {
	w := newWorld(t, "reconpro")
	t1 := unit(UnitTeam, "t1")
	w.units(t1)
	w.tenant(events.SubscriptionSetV1{Features: []string{FeatureTechnicianUsers}})
	w.person("root", KindStaff, "", LevelFull, []string{"administrator"})
	w.person("tia", KindStaff, "", LevelLimited, []string{"team_administrator"}, t1)
	w.person("gone", KindStaff, "", LevelFull, []string{"administrator"})
	w.principal("gone", events.PrincipalRemovedV1{})
	w.principal("tia", events.PermissionDeniedV1{Permission: "invoice.edit"})
	w.principal("tia", events.PermissionGrantedV1{Grant: events.Grant{Permission: "commission.view", Scope: ScopeOwn}})
	cases := []struct {
		principal, perm, scope string
		want                   bool
	}{
		{"root", "invoice.edit", ScopeAll, true},
		{"root", "invoice.edit", ScopeOwn, true},
		{"tia", "invoice.view", ScopeUnitTeam, true},
		{"tia", "invoice.view", ScopeAll, false},
		{"tia", "invoice.view", ScopeUnitArea, false},
		{"tia", "invoice.view", ScopeAssigned, false}, // narrower in effect, but not held as such
		{"tia", "invoice.edit", ScopeUnitTeam, false}, // denied
		{"tia", "commission.view", ScopeOwn, true},    // direct grant
		{"tia", "commission.view", ScopeAll, false},
		{"tia", SessionLogin, ScopeAll, true},
		{"gone", "invoice.view", ScopeAll, false},
		{"nobody", "invoice.view", ScopeAll, false},
	}
	for _, c := range cases {
		if got := Holds(w.m.T, w.m.Principals[c.principal], c.perm, c.scope); got != c.want {
			t.Errorf("Holds(%s, %s, %s) = %v, want %v", c.principal, c.perm, c.scope, got, c.want)
		}
	}
}
