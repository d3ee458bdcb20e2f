package aggregates

import (
	"errors"
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

func strp(s string) *string { return &s }

// TestDecideErrors produces every error code of SPEC section 5 and the guard order: each case
// that breaks two guards must answer the earlier one.
func TestDecideErrors(t *testing.T) {
	d := reconproWorld(t)
	d.must(SystemActor, &SetSubscription{Features: &[]string{}, Seats: map[string]int{LevelFull: 5}})
	rec := func(typ, id string) events.RecordBody { return events.RecordBody{Type: typ, ID: id} }
	cases := []struct {
		name  string
		actor string
		cmd   Command
		code  Code
		msg   string // a part of the message a person acts on
	}{
		// body
		{"bad actor token", "al ice", &DeleteRole{Role: "x"}, CodeInvalidArgument, "actor"},
		{"principal named system", "admin", &RegisterPrincipal{Principal: "system", Kind: KindStaff}, CodeInvalidArgument, "operator"},
		{"bad kind", "admin", &RegisterPrincipal{Principal: "x", Kind: "robot"}, CodeInvalidArgument, "kind"},
		{"two @", "admin", &RegisterPrincipal{Principal: "x", Kind: KindStaff, Email: "a@b@c"}, CodeInvalidArgument, "@"},
		{"email too long", "admin", &RegisterPrincipal{Principal: "x", Kind: KindStaff, Email: strings.Repeat("a", 250) + "@b.cd"}, CodeInvalidArgument, "254"},
		{"client contact without client", "admin", &RegisterPrincipal{Principal: "x", Kind: KindClientContact}, CodeInvalidArgument, "client is required"},
		{"id too long", "admin", &RemovePrincipal{Principal: strings.Repeat("x", 65)}, CodeInvalidArgument, "1 to 64"},
		{"bad scope", "admin", &GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: "everything"}, CodeInvalidArgument, "scope"},
		{"bad level", "admin", &SetAccessLevel{Principal: "bob", Level: "root"}, CodeInvalidArgument, "level"},
		{"bad unit kind", "admin", &DefineUnit{Unit: events.UnitRef{Kind: "galaxy", ID: "g"}}, CodeInvalidArgument, "unit.kind"},
		{"unknown preset", SystemActor, &CreateTenant{Preset: "nope", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff}}, CodeInvalidArgument, "preset"},
		{"subscription without features", SystemActor, &SetSubscription{Seats: map[string]int{}}, CodeInvalidArgument, "features"},
		{"seats for disabled", SystemActor, &SetSubscription{Features: &[]string{}, Seats: map[string]int{LevelDisabled: 1}}, CodeInvalidArgument, "seats"},
		{"set email without email", "admin", &SetEmail{Principal: "bob"}, CodeInvalidArgument, "email is required"},
		{"principal as record", "admin", &RegisterRecord{RecordBody: rec("user", "u1")}, CodeInvalidArgument, "principal"},
		{"unit as record", "admin", &RemoveRecord{Type: "team", ID: "t1"}, CodeInvalidArgument, "DefineUnit"},
		{"policy implication field", "admin", &SetPolicy{Policy: &events.Policy{Permissions: []string{ManageAccess}, Implies: []events.Implication{{Permission: ManageAccess, Field: "owner", Grants: ManageAccess}}}}, CodeInvalidArgument, "field"},
		{"policy bad permission", "admin", &SetPolicy{Policy: &events.Policy{Permissions: []string{"Invoice View"}}}, CodeInvalidArgument, "snake"},
		// names
		{"unknown role", "admin", &AssignRole{Principal: "bob", Role: "wizard"}, CodeUnknownRole, "wizard"},
		{"unknown role before unknown principal", "admin", &AssignRole{Principal: "ghost", Role: "wizard"}, CodeUnknownRole, ""},
		{"unknown permission", "admin", &GrantPermission{Principal: "bob", Permission: "invoice.veiw", Scope: ScopeAll}, CodeUnknownPermission, "invoice.view"},
		{"unknown permission before unknown principal", "nobody", &DenyPermission{Principal: "ghost", Permission: "x.y"}, CodeUnknownPermission, ""},
		{"unknown permission in role", "admin", &DefineRole{Role: "r", Grants: []events.Grant{{Permission: "x.y", Scope: ScopeAll}}}, CodeUnknownPermission, ""},
		{"policy names its own", "admin", &SetPolicy{Policy: &events.Policy{Permissions: []string{ManageAccess, SessionLogin}, Unscoped: []string{"report.view"}}}, CodeUnknownPermission, "unscoped"},
		// existence
		{"unknown principal", "admin", &SetAccessLevel{Principal: "ghost", Level: LevelFull}, CodeNotFound, "ghost"},
		{"unknown principal before forbidden actor", "nobody", &RemovePrincipal{Principal: "ghost"}, CodeNotFound, ""},
		{"undefined unit", "admin", &JoinUnit{Principal: "bob", Unit: team("t9")}, CodeNotFound, "DefineUnit"},
		{"undefined unit of a record", "admin", &RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "i", Units: []events.UnitRef{team("t9")}}}, CodeNotFound, "t9"},
		{"unknown record", "admin", &AssignRecord{Type: "invoice", ID: "nope", Principal: "bob"}, CodeNotFound, "nope"},
		{"unknown role to delete", "admin", &DeleteRole{Role: "wizard"}, CodeNotFound, "wizard"},
		{"unknown role to grant to", "admin", &GrantRolePermission{Role: "wizard", Permission: "invoice.view", Scope: ScopeAll}, CodeNotFound, ""},
		// actor
		{"actor not a principal", "nobody", &SetEmail{Principal: "bob", Email: strp("b@x.y")}, CodeForbidden, "not a principal"},
		{"disabled actor", "dora", &DeleteRole{Role: "accountant"}, CodeForbidden, ""},
		{"only system creates tenants", "admin", &CreateTenant{Preset: "empty", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff, Email: "a@b.c"}}, CodeForbidden, "operator"},
		{"only system sets subscriptions", "admin", &SetSubscription{Features: &[]string{"technician_users"}, Seats: map[string]int{}}, CodeForbidden, "operator"},
		{"team admin outside the team", "ta", &SetEmail{Principal: "carl", Email: strp("c@x.y")}, CodeForbidden, "user.manage_access"},
		{"team admin registers outside the team", "ta", &RegisterPrincipal{Principal: "x", Kind: KindStaff, Units: []events.UnitRef{team("t2")}}, CodeForbidden, ""},
		{"team admin may not change tenant settings", "ta", &DefineUnit{Unit: team("t3")}, CodeForbidden, "scope all"},
		{"grant it lacks", "ta", &GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: ScopeAll}, CodeForbidden, "does not hold"},
		{"make itself administrator", "ta", &AssignRole{Principal: "ta", Role: "administrator"}, CodeForbidden, "does not hold"},
		{"level wider than own", "tl", &SetAccessLevel{Principal: "dora", Level: LevelFull}, CodeForbidden, "wider"},
		{"record outside the team", "ta", &RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-9", Units: []events.UnitRef{team("t2")}}}, CodeForbidden, "repair_order.edit"},
		{"record moved out of the team", "ta", &UpdateRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{team("t2")}}}, CodeForbidden, "after the update"},
		{"type no role names", "ta", &RegisterRecord{RecordBody: rec("widget", "w1")}, CodeForbidden, "widget.edit"},
		{"client contact manages no tenant", "cc", &DefineUnit{Unit: team("t3")}, CodeForbidden, ""},
		{"forbidden before already exists", "ta", &DefineUnit{Unit: team("t1")}, CodeForbidden, ""},
		// domain
		{"tenant exists", SystemActor, &CreateTenant{Preset: "empty", Admin: RegisterPrincipal{Principal: "a", Kind: KindStaff, Email: "a@b.c"}}, CodeAlreadyExists, "acme"},
		{"unit exists", "admin", &DefineUnit{Unit: team("t1")}, CodeAlreadyExists, "t1"},
		{"role exists", "admin", &DefineRole{Role: "accountant"}, CodeAlreadyExists, ""},
		{"principal exists", "admin", &RegisterPrincipal{Principal: "bob", Kind: KindStaff}, CodeAlreadyExists, ""},
		{"record exists", "admin", &RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{team("t1")}}}, CodeAlreadyExists, "UpdateRecord"},
		{"exclusive after another", "admin", &AssignRole{Principal: "bob", Role: "team_work_manager"}, CodeExclusiveRole, "exclusive"},
		{"another after exclusive", "admin", &AssignRole{Principal: "ta", Role: "accountant"}, CodeExclusiveRole, "team_administrator"},
		{"exclusive before feature", "admin", &AssignRole{Principal: "bob", Role: "technician"}, CodeExclusiveRole, ""},
		{"feature required", "admin", &AssignRole{Principal: "carl", Role: "technician"}, CodeFeatureRequired, "technician_users"},
		{"kind mismatch", "admin", &AssignRole{Principal: "carl", Role: "client"}, CodePrincipalKindMismatch, "client_contact"},
		{"level needs email", "admin", &SetAccessLevel{Principal: "dora", Level: LevelLimited}, CodeEmailRequired, "SetEmail"},
		{"clearing email at full", "admin", &SetEmail{Principal: "bob", Email: strp("")}, CodeEmailRequired, ""},
		{"seat limit", "admin", &SetAccessLevel{Principal: "erin", Level: LevelFull}, CodeSeatLimitReached, "tenant acme allows 5 full seats and all 5 are taken"},
		{"delete held role", "admin", &DeleteRole{Role: "accountant"}, CodeConflict, "bob"},
		{"delete admin role", "admin", &DeleteRole{Role: "administrator"}, CodeConflict, "administrator role"},
		{"change admin role", "admin", &RevokeRolePermission{Role: "administrator", Permission: "invoice.view", Scope: ScopeAll}, CodeConflict, ""},
		{"policy drops a used name", "admin", &SetPolicy{Policy: &events.Policy{Permissions: []string{ManageAccess, SessionLogin}}}, CodeConflict, "revoke"},
	}
	before := d.seq
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.try(c.actor, c.cmd)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error %s", err, c.code)
			}
			if e.Code != c.code || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, c.code, c.msg)
			}
		})
	}
	if d.seq != before {
		t.Fatalf("rejected commands wrote %d messages", d.seq-before)
	}
}
