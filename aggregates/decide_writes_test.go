package aggregates

import (
	"errors"
	"reflect"
	"testing"

	"github.com/acl-es/acl/events"
)

func codeOf(err error) Code {
	if err == nil {
		return ""
	}
	return ErrorCode(err)
}

// TestDecideNewTenant: before a tenant exists, the body still answers first, then not_found
// before any name; CreateTenant's own domain guards.
func TestDecideNewTenant(t *testing.T) {
	cases := []struct {
		name  string
		actor string
		cmd   Command
		code  Code
	}{
		{"body before tenant", "admin", &RegisterPrincipal{Principal: "system", Kind: KindStaff}, CodeInvalidArgument},
		{"tenant before names", "admin", &GrantPermission{Principal: "bob", Permission: "no.such", Scope: ScopeAll}, CodeNotFound},
		{"tenant before role names", "admin", &AssignRole{Principal: "bob", Role: "wizard"}, CodeNotFound},
		{"admin units cannot exist yet", SystemActor, &CreateTenant{Preset: "empty", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff, Email: "a@b.c", Units: []events.UnitRef{team("t1")}}}, CodeNotFound},
		{"first admin needs email", SystemActor, &CreateTenant{Preset: "empty", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff}}, CodeEmailRequired},
		{"admin role is for staff", SystemActor, &CreateTenant{Preset: "reconpro", Admin: RegisterPrincipal{Principal: "a", Kind: KindEmployee, Email: "a@b.c"}}, CodePrincipalKindMismatch},
		{"created", SystemActor, &CreateTenant{Preset: "trackops", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff, Email: "a@b.c"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDecideWorld(t)
			if _, err := d.try(c.actor, c.cmd); codeOf(err) != c.code {
				t.Fatalf("got %v, want code %q", err, c.code)
			}
		})
	}
}

// TestDecideCreateTenantWrites: one batch of two aggregates that leaves an administrator able to
// act at once.
func TestDecideCreateTenantWrites(t *testing.T) {
	d := newDecideWorld(t)
	ws := d.must(SystemActor, &CreateTenant{Preset: "probuild", Admin: RegisterPrincipal{Principal: "boss", Kind: KindStaff, Email: "boss@acme.test"}})
	types := func(w Write) []string {
		var out []string
		for _, e := range w.Events {
			out = append(out, e.EventType())
		}
		return out
	}
	if len(ws) != 2 || ws[0].Aggregate != events.TenantRef(dwTenant) || ws[1].Aggregate != events.PrincipalRef("boss") {
		t.Fatalf("writes %+v, want tenant then principal", ws)
	}
	if got, want := types(ws[0]), []string{events.TenantCreated, events.SeatChanged}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tenant events %v, want %v", got, want)
	}
	if got, want := types(ws[1]), []string{events.PrincipalRegistered, events.RoleAssigned, events.AccessLevelSet}; !reflect.DeepEqual(got, want) {
		t.Fatalf("principal events %v, want %v", got, want)
	}
	p := d.m.Principals["boss"]
	if p.Level != LevelFull || !reflect.DeepEqual(p.Roles, []string{"admin"}) || d.m.T.SeatHolders["boss"] != LevelFull {
		t.Fatalf("admin %+v, seats %v", p, d.m.T.SeatHolders)
	}
	// The administrator can act right away, and a second principal needs an email for a level.
	d.must("boss", &RegisterPrincipal{Principal: "w", Kind: KindStaff})
	if _, err := d.try("boss", &SetAccessLevel{Principal: "w", Level: LevelLimited}); codeOf(err) != CodeEmailRequired {
		t.Fatalf("got %v, want email_required", err)
	}
}

// TestDecideSeatWrites: level changes and removals write the principal and the tenant, each
// expecting the sequence it was decided on (the helper checks the expectation).
func TestDecideSeatWrites(t *testing.T) {
	d := reconproWorld(t)
	cases := []struct {
		name string
		cmd  Command
		aggs []events.AggregateRef // written aggregates, in order
		seat string                // erin's seat afterwards
	}{
		{"to limited", &SetAccessLevel{Principal: "erin", Level: LevelLimited}, []events.AggregateRef{events.PrincipalRef("erin"), events.TenantRef(dwTenant)}, LevelLimited},
		{"same level writes nothing", &SetAccessLevel{Principal: "erin", Level: LevelLimited}, nil, LevelLimited},
		{"to disabled frees the seat", &SetAccessLevel{Principal: "erin", Level: LevelDisabled}, []events.AggregateRef{events.PrincipalRef("erin"), events.TenantRef(dwTenant)}, ""},
		{"back to full", &SetAccessLevel{Principal: "erin", Level: LevelFull}, []events.AggregateRef{events.PrincipalRef("erin"), events.TenantRef(dwTenant)}, LevelFull},
		{"removal frees the seat", &RemovePrincipal{Principal: "erin"}, []events.AggregateRef{events.PrincipalRef("erin"), events.TenantRef(dwTenant)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := d.must("admin", c.cmd)
			var aggs []events.AggregateRef
			for _, w := range ws {
				if len(w.Events) > 0 {
					aggs = append(aggs, w.Aggregate)
				}
			}
			if !reflect.DeepEqual(aggs, c.aggs) {
				t.Fatalf("wrote %v, want %v", aggs, c.aggs)
			}
			if got := d.m.T.SeatHolders["erin"]; got != c.seat {
				t.Fatalf("erin's seat %q, want %q", got, c.seat)
			}
		})
	}
	// A disabled principal holds no seat: removing it writes the principal only.
	ws := d.must("admin", &RemovePrincipal{Principal: "dora"})
	if len(ws) != 1 || ws[0].Aggregate != events.PrincipalRef("dora") {
		t.Fatalf("removing a disabled principal wrote %+v", ws)
	}
	// Ids are never reused.
	if _, err := d.try("admin", &RegisterPrincipal{Principal: "erin", Kind: KindStaff}); codeOf(err) != CodeAlreadyExists {
		t.Fatalf("re-registering a removed id: %v, want already_exists", err)
	}
}

// TestDecideRacingSeats is TO-7 at the level of decisions: two changes decided on the same
// state for the last seat both pass, but they expect the same tenant sequence, so the store
// keeps one; the loser, decided again on the new state, is seat_limit_reached.
func TestDecideRacingSeats(t *testing.T) {
	d := reconproWorld(t)
	d.person("fred", KindStaff, "", LevelDisabled, nil)
	d.must(SystemActor, &SetSubscription{Features: &[]string{}, Seats: map[string]int{LevelFull: 6}})
	a := d.as("admin", &SetAccessLevel{Principal: "erin", Level: LevelFull})
	b := d.as("admin", &SetAccessLevel{Principal: "fred", Level: LevelFull})
	wa, errA := Decide(d.m, a, d.now)
	wb, errB := Decide(d.m, b, d.now)
	if errA != nil || errB != nil {
		t.Fatalf("decisions on the same state: %v, %v", errA, errB)
	}
	if wa[1].Aggregate != events.TenantRef(dwTenant) || wa[1].Expected != wb[1].Expected {
		t.Fatalf("the two decisions must expect the same tenant sequence: %+v / %+v", wa[1], wb[1])
	}
	d.must("admin", a)
	if _, err := d.try("admin", b); codeOf(err) != CodeSeatLimitReached {
		t.Fatalf("the loser decided again: %v, want seat_limit_reached", err)
	}
}

// TestDecideRacingExclusive is RP-10 under a race: both assignments write the principal at the
// same expected sequence; the second, decided again, is exclusive_role whichever came first.
func TestDecideRacingExclusive(t *testing.T) {
	for _, first := range []string{"team_work_manager", "accountant"} {
		t.Run(first, func(t *testing.T) {
			d := reconproWorld(t)
			second := map[string]string{"team_work_manager": "accountant", "accountant": "team_work_manager"}[first]
			a := d.as("admin", &AssignRole{Principal: "carl", Role: first})
			b := d.as("admin", &AssignRole{Principal: "carl", Role: second})
			wa, _ := Decide(d.m, a, d.now)
			wb, _ := Decide(d.m, b, d.now)
			if len(wa) != 1 || len(wb) != 1 || wa[0].Expected != wb[0].Expected {
				t.Fatalf("decisions %+v / %+v must expect the same principal sequence", wa, wb)
			}
			d.must("admin", a)
			if _, err := d.try("admin", b); codeOf(err) != CodeExclusiveRole {
				t.Fatalf("got %v, want exclusive_role", err)
			}
		})
	}
}

// TestDecideUnchanged: commands that change nothing write nothing and answer the aggregate's
// sequence.
func TestDecideUnchanged(t *testing.T) {
	d := reconproWorld(t)
	d.must("admin", &AssignRecord{Type: "repair_order", ID: "ro-1", Principal: "bob"})
	cases := []struct {
		name string
		cmd  Command
		agg  events.AggregateRef
	}{
		{"role held", &AssignRole{Principal: "bob", Role: "accountant"}, events.PrincipalRef("bob")},
		{"role not held", &RevokeRole{Principal: "bob", Role: "work_manager"}, events.PrincipalRef("bob")},
		{"unit joined", &JoinUnit{Principal: "bob", Unit: team("t1")}, events.PrincipalRef("bob")},
		{"unit not joined", &LeaveUnit{Principal: "bob", Unit: team("t2")}, events.PrincipalRef("bob")},
		{"same email", &SetEmail{Principal: "bob", Email: strp("bob@acme.test")}, events.PrincipalRef("bob")},
		{"nothing to clear", &ClearPermission{Principal: "bob", Permission: "invoice.view"}, events.PrincipalRef("bob")},
		{"assigned already (default relation)", &AssignRecord{Type: "repair_order", ID: "ro-1", Principal: "bob", Relation: events.DefaultRelation}, events.RecordAggregate("repair_order", "ro-1")},
		{"not assigned", &UnassignRecord{Type: "repair_order", ID: "ro-1", Principal: "carl"}, events.RecordAggregate("repair_order", "ro-1")},
		{"same body", &UpdateRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{team("t1"), team("t1")}, Assignees: []events.Assignee{{Principal: "bob"}}}}, events.RecordAggregate("repair_order", "ro-1")},
		{"role grant present", &GrantRolePermission{Role: "accountant", Permission: "report.view", Scope: ScopeAll}, events.TenantRef(dwTenant)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := d.seq
			ws := d.must("admin", c.cmd)
			if len(ws) != 1 || len(ws[0].Events) != 0 || ws[0].Aggregate != c.agg || ws[0].Expected != d.aggSeq(c.agg) || d.seq != before {
				t.Fatalf("got %+v, want one empty write to %v at its sequence", ws, c.agg)
			}
		})
	}
}

// TestDecideEscalation: what a team administrator may hand out is what it holds itself.
func TestDecideEscalation(t *testing.T) {
	d := reconproWorld(t)
	cases := []struct {
		name string
		cmd  Command
		code Code
	}{
		{"grant at its own scope", &GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: ScopeUnitTeam}, ""},
		{"grant at a wider scope", &GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: ScopeClient}, CodeForbidden},
		{"a role whose grants it holds", &AssignRole{Principal: "erin", Role: "team_work_manager"}, ""},
		{"a role with grants at all", &AssignRole{Principal: "dora", Role: "work_manager"}, CodeForbidden},
		{"define a role beyond its grants", &DefineRole{Role: "big", Grants: []events.Grant{{Permission: "invoice.view", Scope: ScopeAll}}}, CodeForbidden},
		{"its own level", &SetAccessLevel{Principal: "erin", Level: LevelFull}, ""},
		{"deny needs no holding", &DenyPermission{Principal: "bob", Permission: "commission.view"}, ""},
		{"someone outside its team", &RevokeRole{Principal: "carl", Role: "accountant"}, CodeForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := d.try("ta", c.cmd); codeOf(err) != c.code {
				t.Fatalf("got %v, want code %q", err, c.code)
			}
		})
	}
}

// TestDecideRoleLifecycle: a role can be deleted once nobody holds it, and an id that a
// principal still holds (after a deletion it raced) cannot be defined again.
func TestDecideRoleLifecycle(t *testing.T) {
	d := reconproWorld(t)
	d.must("admin", &DefineRole{Role: "viewer", Grants: []events.Grant{{Permission: "invoice.view", Scope: ScopeAll}}, PrincipalKinds: []string{KindStaff}})
	d.must("admin", &AssignRole{Principal: "carl", Role: "viewer"})
	if _, err := d.try("admin", &DeleteRole{Role: "viewer"}); codeOf(err) != CodeConflict {
		t.Fatalf("delete held: %v", err)
	}
	d.must("admin", &RevokeRole{Principal: "carl", Role: "viewer"})
	d.must("admin", &DeleteRole{Role: "viewer"})
	// An assignment that raced the deletion: the principal holds a role that is gone.
	env, _ := events.New(events.Meta{Tenant: dwTenant, Aggregate: events.PrincipalRef("carl"), Actor: "admin", CommandID: "raced", Time: d.now}, events.RoleAssignedV1{Role: "viewer"})
	d.seq++
	env.Seq = d.seq
	if err := d.m.Apply(env); err != nil {
		t.Fatal(err)
	}
	_, err := d.try("admin", &DefineRole{Role: "viewer", Grants: []events.Grant{{Permission: "invoice.edit", Scope: ScopeAll}}})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeConflict {
		t.Fatalf("redefining a held id: %v, want conflict", err)
	}
	// Revoking the stale role works although the role no longer exists.
	d.must("admin", &RevokeRole{Principal: "carl", Role: "viewer"})
	d.must("admin", &DefineRole{Role: "viewer"})
}
