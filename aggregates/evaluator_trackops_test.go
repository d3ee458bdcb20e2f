package aggregates

import (
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

// trackopsWorld is a Trackops tenant with two locations, two clients and people at every level:
//
//	alice  staff, administrator, full
//	fred   staff, staff, full, east          lou  staff, staff, full_location, east
//	lim    staff, staff, limited, east        sal  staff, staff, limited (salesperson of inv-2)
//	limx   staff, invoices only, limited      wes  staff, staff, full, west
//	noinv  staff, cases only, full            dis  staff, staff, disabled
//	cc1    client_contact of c1, full (also user.view and client_contact.view at all, directly)
//	cc1l   client_contact of c1, limited      cc2  client_contact of c2, full
//
//	case-7  c1, east, assignees lim, cc1l, limx     case-8  c2, west
//	inv-1   c1, east, links case-7                  inv-2   c2, west, salesperson sal, links case-8
//	inv-3   c1, west, assignee cc1l, links case-7   exp-1   expense, west
func trackopsWorld(tb testing.TB) *world {
	w := newWorld(tb, "trackops")
	east, west := unit(UnitLocation, "east"), unit(UnitLocation, "west")
	w.units(east, west)
	w.tenant(events.RoleDefinedV1{RoleDef: events.RoleDef{Role: "invoices_only", PrincipalKinds: []string{KindStaff},
		Grants: []events.Grant{{Permission: "invoice.view", Scope: ScopeAll}, {Permission: SessionLogin, Scope: ScopeAll}}}})
	w.tenant(events.RoleDefinedV1{RoleDef: events.RoleDef{Role: "cases_only", PrincipalKinds: []string{KindStaff},
		Grants: []events.Grant{{Permission: "case.view", Scope: ScopeAll}, {Permission: SessionLogin, Scope: ScopeAll}}}})
	staff := []string{"staff"}
	w.person("alice", KindStaff, "", LevelFull, []string{"administrator"}, east)
	w.person("fred", KindStaff, "", LevelFull, staff, east)
	w.person("lou", KindStaff, "", LevelFullLocation, staff, east)
	w.person("lim", KindStaff, "", LevelLimited, staff, east)
	w.person("sal", KindStaff, "", LevelLimited, staff, east)
	w.person("limx", KindStaff, "", LevelLimited, []string{"invoices_only"}, east)
	w.person("wes", KindStaff, "", LevelFull, staff, west)
	w.person("noinv", KindStaff, "", LevelFull, []string{"cases_only"}, east)
	w.person("dis", KindStaff, "", LevelDisabled, staff, east)
	w.person("cc1", KindClientContact, "c1", LevelFull, []string{"client_contact"})
	w.principal("cc1", events.PermissionGrantedV1{Grant: events.Grant{Permission: "user.view", Scope: ScopeAll}})
	w.principal("cc1", events.PermissionGrantedV1{Grant: events.Grant{Permission: "client_contact.view", Scope: ScopeAll}})
	w.person("cc1l", KindClientContact, "c1", LevelLimited, []string{"client_contact"})
	w.person("cc2", KindClientContact, "c2", LevelFull, []string{"client_contact"})

	w.rec(events.RecordBody{Type: "client", ID: "c1"})
	w.rec(events.RecordBody{Type: "client", ID: "c2"})
	w.rec(events.RecordBody{Type: "case", ID: "case-7", Client: "c1", Units: []events.UnitRef{east},
		Assignees: append(append(as("lim"), as("cc1l")...), as("limx")...)})
	w.rec(events.RecordBody{Type: "case", ID: "case-8", Client: "c2", Units: []events.UnitRef{west}})
	w.rec(events.RecordBody{Type: "invoice", ID: "inv-1", Client: "c1", Units: []events.UnitRef{east},
		Links: []events.RecordRef{{Type: "case", ID: "case-7"}}})
	w.rec(events.RecordBody{Type: "invoice", ID: "inv-2", Client: "c2", Units: []events.UnitRef{west},
		Assignees: as("sal", "salesperson"), Links: []events.RecordRef{{Type: "case", ID: "case-8"}}})
	w.rec(events.RecordBody{Type: "invoice", ID: "inv-3", Client: "c1", Units: []events.UnitRef{west},
		Assignees: as("cc1l"), Links: []events.RecordRef{{Type: "case", ID: "case-7"}}})
	w.rec(events.RecordBody{Type: "expense", ID: "exp-1", Units: []events.UnitRef{west}})
	return w
}

type checkCase struct {
	name      string
	principal string
	perm      string
	rec       *events.RecordRef
	want      bool
	reason    string // a part the reason must contain
}

func runChecks(t *testing.T, w *world, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := w.check(c.principal, c.perm, c.rec)
			if d.Allowed != c.want {
				t.Fatalf("allowed = %v, want %v (reason: %s)", d.Allowed, c.want, d.Reason)
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, c.reason)
			}
			if d.Grants == nil || d.Events == nil {
				t.Errorf("nil list in %+v", d)
			}
			if d.Allowed != (len(d.Grants) > 0) {
				t.Errorf("allowed %v with grants %+v", d.Allowed, d.Grants)
			}
		})
	}
}

func TestEvalTO1RolesAndLevelBothDecide(t *testing.T) {
	runChecks(t, trackopsWorld(t), []checkCase{
		{"no invoice.view sees no invoice even at full", "noinv", "invoice.view", ref("invoice", "inv-1"), false, "no role or direct grant of noinv gives invoice.view"},
		{"nor asked without a record", "noinv", "invoice.view", nil, false, ""},
		{"the same principal sees cases", "noinv", "case.view", ref("case", "case-8"), true, "scope all covers case-8"},
		{"same role, limited level, unassigned case", "lim", "case.view", ref("case", "case-8"), false, "only at scope assigned"},
		{"same role, full level, any case", "fred", "case.view", ref("case", "case-8"), true, ""},
	})
}

func TestEvalTO2Full(t *testing.T) {
	runChecks(t, trackopsWorld(t), []checkCase{
		{"staff at full sees another location's invoice", "fred", "invoice.view", ref("invoice", "inv-2"), true, "role staff grants invoice.view at scope all; scope all covers inv-2"},
		{"client contact sees its client's invoice", "cc1", "invoice.view", ref("invoice", "inv-1"), true, "narrowed for a client contact to client; inv-1 belongs to cc1's client c1"},
		{"client contact never sees another client's invoice", "cc1", "invoice.view", ref("invoice", "inv-2"), false, "own client's records"},
		{"nor another client's case", "cc1", "case.view", ref("case", "case-8"), false, ""},
		{"nor staff, even with user.view at all", "cc1", "user.view", ref("user", "fred"), false, ""},
		{"it sees contacts of its client", "cc1", "client_contact.view", ref("client_contact", "cc1l"), true, ""},
		{"and itself", "cc1", "client_contact.view", ref("client_contact", "cc1"), true, ""},
		{"not contacts of another client", "cc1", "client_contact.view", ref("client_contact", "cc2"), false, ""},
	})
}

func TestEvalTO3FullLocation(t *testing.T) {
	w := trackopsWorld(t)
	runChecks(t, w, []checkCase{
		{"invoice of its location", "lou", "invoice.view", ref("invoice", "inv-1"), true, "narrowed by access level full_location to unit:location; lou and inv-1 share location east"},
		{"not another location's invoice", "lou", "invoice.view", ref("invoice", "inv-2"), false, ""},
		{"case of its location", "lou", "case.view", ref("case", "case-7"), true, ""},
		{"not another location's expense", "lou", "expense.view", ref("expense", "exp-1"), false, ""},
		{"staff of its location", "lou", "user.view", ref("user", "fred"), true, ""},
		{"not staff of another location", "lou", "user.view", ref("user", "wes"), false, ""},
		{"unscoped report is not limited", "lou", "report.view", nil, true, "not narrowed by access level full_location because report.view is unscoped"},
	})
	d := w.check("lou", "report.view", nil)
	if g := d.Grants[0]; !g.Unscoped || g.Scope != ScopeAll || g.NarrowedFrom != "" {
		t.Errorf("report grant %+v, want unscoped at all", g)
	}
	d = w.check("lou", "invoice.view", ref("invoice", "inv-1"))
	if g := d.Grants[0]; g.Unscoped || g.Scope != ScopeUnitLocation || g.NarrowedFrom != ScopeAll {
		t.Errorf("invoice grant %+v, want unit:location narrowed from all", g)
	}
}

func TestEvalTO4Limited(t *testing.T) {
	runChecks(t, trackopsWorld(t), []checkCase{
		{"TO-4 a case it is assigned to", "lim", "case.view", ref("case", "case-7"), true, "lim is assignee of case-7"},
		{"TO-4 not an expense it is not assigned to", "lim", "expense.view", ref("expense", "exp-1"), false, ""},
		{"TO-4a all clients with client.view", "lim", "client.view", ref("client", "c2"), true, "kept at access level limited by the policy's exception for client.view"},
		{"TO-4b all client contacts with client_contact.view", "lim", "client_contact.view", ref("client_contact", "cc2"), true, ""},
		{"TO-4b but not all staff", "lim", "user.view", ref("user", "fred"), false, ""},
		{"TO-4c salesperson sees the invoice it is directly assigned to", "sal", "invoice.view", ref("invoice", "inv-2"), true, "sal is salesperson of inv-2"},
		{"TO-4c and not others", "sal", "invoice.view", ref("invoice", "inv-1"), false, ""},
		{"TO-4d staff sees the invoice linked to its case", "lim", "invoice.view", ref("invoice", "inv-1"), true,
			"role staff grants invoice.view at scope all, narrowed by access level limited to assigned; lim is assignee of case-7, linked from inv-1"},
		{"TO-4d not an invoice of another case", "lim", "invoice.view", ref("invoice", "inv-2"), false, ""},
		{"TO-4e client contact sees the invoice assigned to it", "cc1l", "invoice.view", ref("invoice", "inv-3"), true, "cc1l is assignee of inv-3"},
		{"TO-4e but not the one linked to its case", "cc1l", "invoice.view", ref("invoice", "inv-1"), false, ""},
		{"TO-4e its case itself", "cc1l", "case.view", ref("case", "case-7"), true, ""},
		{"TO-4f invoice viewer sees the invoice's client", "limx", "client.view", ref("client", "c1"), true,
			"client.view on c1 is implied by invoice.view on invoice inv-1, whose client is c1: role invoices_only grants invoice.view"},
		{"TO-4f not another client", "limx", "client.view", ref("client", "c2"), false, ""},
		{"TO-4f client contact sees its client through its invoice", "cc1l", "client.view", ref("client", "c1"), true, "implied by invoice.view on invoice inv-3"},
		{"TO-4f implication needs a record", "limx", "client.view", nil, false, ""},
	})
}

func TestEvalTO4dProvenance(t *testing.T) {
	w := trackopsWorld(t)
	lim, inv, cs := w.m.Principals["lim"], w.m.Records[events.RecordRef{Type: "invoice", ID: "inv-1"}],
		w.m.Records[events.RecordRef{Type: "case", ID: "case-7"}]
	d := w.check("lim", "invoice.view", ref("invoice", "inv-1"))
	var want []string
	for _, id := range []string{lim.Prov["role:staff"], w.m.T.Roles["staff"].GrantEvents["invoice.view|all"],
		lim.Prov["level"], inv.Prov["body"], cs.Prov["body"], cs.Prov["assignee:lim|assignee"]} {
		want = addEvent(want, id)
	}
	want = sortedEvents(want)
	if len(want) != 5 { // the case's body event is also its assignment event
		t.Fatalf("fixture has %d distinct events: %v", len(want), want)
	}
	if !equalStrings(d.Events, want) {
		t.Errorf("events %v, want %v", d.Events, want)
	}
	g := d.Grants[0]
	if len(d.Grants) != 1 || g.Source != "role:staff" || g.Scope != ScopeAssigned || g.NarrowedFrom != ScopeAll {
		t.Errorf("grants %+v", d.Grants)
	}
}

func TestEvalTO5Disabled(t *testing.T) {
	w := trackopsWorld(t)
	runChecks(t, w, []checkCase{
		{"cannot log in", "dis", SessionLogin, nil, false, "dis's access level is disabled, so nothing is allowed"},
		{"sees nothing", "dis", "case.view", ref("case", "case-7"), false, "disabled"},
	})
	// Still assignable: a record naming dis is accepted and dis stays unable to see it.
	w.record("case", "case-7", events.RecordAssignedV2{Principal: "dis", Relation: "assignee"})
	runChecks(t, w, []checkCase{{"assigned but disabled", "dis", "case.view", ref("case", "case-7"), false, ""}})
	if d := w.check("dis", SessionLogin, nil); !equalStrings(d.Events, []string{w.m.Principals["dis"].Prov["level"]}) {
		t.Errorf("events %v, want the level event", d.Events)
	}
}

func TestEvalTO8LevelsApplyToClientContactsToo(t *testing.T) {
	runChecks(t, trackopsWorld(t), []checkCase{
		{"full contact sees its client's unassigned invoice", "cc1", "invoice.view", ref("invoice", "inv-1"), true, ""},
		{"limited contact does not", "cc1l", "invoice.view", ref("invoice", "inv-1"), false, "only at scope assigned (narrowed by access level limited from all)"},
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
