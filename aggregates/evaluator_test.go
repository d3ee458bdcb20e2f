package aggregates

import (
	"testing"

	"github.com/acl-es/acl/events"
)

func TestEvalErrorsInOrder(t *testing.T) {
	w := trackopsWorld(t)
	w.record("case", "case-8", events.RecordRemovedV1{})
	cases := []struct {
		name, principal, perm string
		rec                   *events.RecordRef
		want                  Code
	}{
		{"unknown permission first", "nobody", "invoice.veiw", ref("invoice", "none"), CodeUnknownPermission},
		{"then unknown principal", "nobody", "invoice.view", ref("invoice", "none"), CodeNotFound},
		{"then unknown record", "fred", "invoice.view", ref("invoice", "none"), CodeNotFound},
		{"a removed record", "fred", "case.view", ref("case", "case-8"), CodeNotFound},
		{"a record type that does not exist", "fred", "case.view", ref("kase", "case-7"), CodeNotFound},
		{"a principal record of the wrong kind", "fred", "user.view", ref("client_contact", "fred"), CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Check(w.m, c.principal, c.perm, c.rec)
			if got := ErrorCode(err); got != c.want {
				t.Errorf("code %s (%v), want %s", got, err, c.want)
			}
		})
	}
}

func TestEvalDenyBeatsGrantAndImplication(t *testing.T) {
	w := trackopsWorld(t)
	w.principal("fred", events.PermissionDeniedV1{Permission: "invoice.view"})
	w.principal("alice", events.PermissionDeniedV1{Permission: "case.view"})
	w.principal("limx", events.PermissionDeniedV1{Permission: "client.view"})
	w.principal("cc1l", events.PermissionDeniedV1{Permission: "invoice.view"})
	// A direct grant of a denied permission does not undo the denial.
	w.principal("fred", events.PermissionGrantedV1{Grant: events.Grant{Permission: "invoice.view", Scope: ScopeAll}})
	runChecks(t, w, []checkCase{
		{"denial beats a role and a direct grant", "fred", "invoice.view", ref("invoice", "inv-1"), false, "fred is denied invoice.view directly; a denial beats every grant"},
		{"also without a record", "fred", "invoice.view", nil, false, "denied"},
		{"denial beats the administrator role", "alice", "case.view", ref("case", "case-7"), false, "denied"},
		{"other permissions stay", "fred", "case.view", ref("case", "case-7"), true, ""},
		{"denial beats an implication", "limx", "client.view", ref("client", "c1"), false, "denied"},
		{"a denied implying permission implies nothing", "cc1l", "client.view", ref("client", "c1"), false, ""},
	})
	if d := w.check("fred", "invoice.view", nil); !equalStrings(d.Events, []string{w.m.Principals["fred"].Prov["deny:invoice.view"]}) {
		t.Errorf("events %v, want the denial event", d.Events)
	}
	// Clearing the permission removes the denial and the direct grant: the role grants again.
	w.principal("fred", events.PermissionClearedV1{Permission: "invoice.view"})
	runChecks(t, w, []checkCase{{"cleared", "fred", "invoice.view", ref("invoice", "inv-1"), true, "role staff"}})
}

func TestEvalRemovedPrincipal(t *testing.T) {
	w := trackopsWorld(t)
	w.principal("fred", events.PrincipalRemovedV1{})
	runChecks(t, w, []checkCase{
		{"a removed principal is allowed nothing", "fred", "case.view", ref("case", "case-7"), false, "fred was removed"},
		{"not even to log in", "fred", SessionLogin, nil, false, "removed"},
	})
	if _, err := Check(w.m, "alice", "user.view", ref("user", "fred")); ErrorCode(err) != CodeNotFound {
		t.Errorf("a removed principal's record: %v, want not_found", err)
	}
}

func TestEvalPermissionAppliesToItsType(t *testing.T) {
	w := trackopsWorld(t)
	runChecks(t, w, []checkCase{
		{"invoice.view on a case", "fred", "invoice.view", ref("case", "case-7"), false, "invoice.view applies only to records of type invoice, and case-7 is a case"},
		{"session.login on a record", "fred", SessionLogin, ref("case", "case-7"), false, ""},
		{"manage_access on a staff record", "alice", ManageAccess, ref("user", "fred"), true, ""},
		{"manage_access on a client contact record", "alice", ManageAccess, ref("client_contact", "cc1"), true, ""},
		{"manage_access on a non-principal record", "alice", ManageAccess, ref("case", "case-7"), false, ""},
		{"a principal owns its own record", "fred", "user.view", ref("user", "fred"), true, ""},
	})
}

// TestEvalAdminHoldsLaterNames: the administrator role holds every name of the policy, names
// added later by SetPolicy included, whatever its Def.Grants say.
func TestEvalAdminHoldsLaterNames(t *testing.T) {
	w := trackopsWorld(t)
	if _, err := Check(w.m, "alice", "widget.view", nil); ErrorCode(err) != CodeUnknownPermission {
		t.Fatalf("before SetPolicy: %v, want unknown_permission", err)
	}
	pol := w.m.T.Policy
	pol.Permissions = append(append([]string{}, pol.Permissions...), "widget.view")
	policyEvent := w.tenant(events.PolicySetV1{Policy: pol})
	w.rec(events.RecordBody{Type: "widget", ID: "w1"})
	runChecks(t, w, []checkCase{
		{"admin holds the new name", "alice", "widget.view", nil, true, "role administrator grants widget.view at scope all"},
		{"on any record", "alice", "widget.view", ref("widget", "w1"), true, ""},
		{"nobody else does", "fred", "widget.view", ref("widget", "w1"), false, ""},
	})
	d := w.check("alice", "widget.view", nil)
	if !containsString(d.Grants[0].Events, policyEvent) {
		t.Errorf("grant events %v lack the policy event %s", d.Grants[0].Events, policyEvent)
	}
	if !Holds(w.m.T, w.m.Principals["alice"], "widget.view", ScopeOwn) {
		t.Error("admin does not hold the new name for the escalation guard")
	}
}

func TestEvalFeatureGatedRole(t *testing.T) {
	w := newWorld(t, "reconpro")
	t1, t2 := unit(UnitTeam, "t1"), unit(UnitTeam, "t2")
	w.units(t1, t2)
	w.person("tom", KindStaff, "", LevelFull, []string{"technician"}, t1)
	w.rec(events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{t1}})
	w.rec(events.RecordBody{Type: "repair_order", ID: "ro-2", Units: []events.UnitRef{t2}})
	runChecks(t, w, []checkCase{
		{"RP-3 without the feature the role gives nothing", "tom", "repair_order.view", ref("repair_order", "ro-1"), false, "the tenant's subscription lacks feature technician_users"},
		{"not even session.login", "tom", SessionLogin, nil, false, ""},
	})
	if gs := EffectiveGrants(w.m.T, w.m.Principals["tom"]); len(gs) != 0 {
		t.Errorf("effective grants without the feature: %+v", gs)
	}
	w.tenant(events.SubscriptionSetV1{Features: []string{FeatureTechnicianUsers}})
	runChecks(t, w, []checkCase{
		{"RP-3 with the feature, its team's repair order", "tom", "repair_order.view", ref("repair_order", "ro-1"), true, "tom and ro-1 share team t1"},
		{"RP-3 not another team's", "tom", "repair_order.edit", ref("repair_order", "ro-2"), false, ""},
		{"RP-3 reporting data", "tom", "report.view", nil, true, ""},
		{"RP-3 no invoices", "tom", "invoice.view", nil, false, ""},
	})
}

// TestEvalUnitsAreRecords: a unit is a record of its kind's type whose unit is itself.
func TestEvalUnitsAreRecords(t *testing.T) {
	w := newWorld(t, "reconpro")
	t1, t2, a1 := unit(UnitTeam, "t1"), unit(UnitTeam, "t2"), unit(UnitArea, "a1")
	w.units(t1, t2, a1)
	w.person("tia", KindStaff, "", LevelFull, []string{"team_administrator"}, t1)
	w.person("ed", KindEmployee, "", LevelFull, []string{"employee"}, t1)
	w.person("eve", KindEmployee, "", LevelFull, []string{"employee"}, t2)
	runChecks(t, w, []checkCase{
		{"RP-8 team.edit covers its own team", "tia", "team.edit", ref("team", "t1"), true, "t1 is tia's team"},
		{"RP-8 not another team", "tia", "team.edit", ref("team", "t2"), false, ""},
		{"RP-8 manages its team's employees", "tia", ManageAccess, ref("employee", "ed"), true, "tia and ed share team t1"},
		{"RP-8 not another team's", "tia", ManageAccess, ref("employee", "eve"), false, ""},
		{"RP-8 non-record settings", "tia", "service.edit", nil, true, ""},
	})
}

func TestEvalPB3OwnVersusOthers(t *testing.T) {
	w := probuildWorld(t)
	runChecks(t, w, []checkCase{
		{"worker edits its own timesheet", "wanda", "timesheet.edit", ref("timesheet", "ts-w"), true, "role worker grants timesheet.edit at scope own; wanda owns ts-w"},
		{"worker does not edit another's", "wanda", "timesheet.edit", ref("timesheet", "ts-s"), false, ""},
		{"worker views another's (View Other User's: four marks)", "wanda", "timesheet.view", ref("timesheet", "ts-s"), true, ""},
		{"manager edits another's", "max", "timesheet.edit", ref("timesheet", "ts-w"), true, "scope all"},
		{"subcontractor edits its own post", "sub", "project_post.edit", ref("project_post", "post-s"), true, ""},
		{"subcontractor does not edit another's post", "sub", "project_post.edit", ref("project_post", "post-w"), false, ""},
		{"manager does not edit others' posts (one mark)", "max", "project_post.edit", ref("project_post", "post-w"), false, ""},
		{"manager deletes others' posts (two marks)", "max", "project_post.delete", ref("project_post", "post-w"), true, ""},
	})
}

func TestEvalPB4Projects(t *testing.T) {
	runChecks(t, probuildWorld(t), []checkCase{
		{"View Project Details: a project one was added to", "wanda", "project.view", ref("project", "p1"), true, "role worker grants project.view at scope assigned; wanda is assignee of p1"},
		{"not another project", "wanda", "project.view", ref("project", "p2"), false, ""},
		{"the manager neither (View All Projects is admin only)", "max", "project.view", ref("project", "p2"), false, ""},
		{"View All Projects: the admin", "ada", "project.view", ref("project", "p2"), true, "scope all"},
	})
}

// probuildWorld: ada admin, max manager, wanda worker, sub subcontractor, all full; wanda was
// added to project p1; timesheets ts-w (wanda's) and ts-s (sub's); posts post-w and post-s.
func probuildWorld(tb testing.TB) *world {
	w := newWorld(tb, "probuild")
	w.person("ada", KindStaff, "", LevelFull, []string{"admin"})
	w.person("max", KindStaff, "", LevelFull, []string{"manager"})
	w.person("wanda", KindEmployee, "", LevelFull, []string{"worker"})
	w.person("sub", KindEmployee, "", LevelFull, []string{"subcontractor"})
	w.rec(events.RecordBody{Type: "project", ID: "p1", Assignees: as("wanda")})
	w.rec(events.RecordBody{Type: "project", ID: "p2"})
	w.rec(events.RecordBody{Type: "timesheet", ID: "ts-w", Owner: "wanda"})
	w.rec(events.RecordBody{Type: "timesheet", ID: "ts-s", Owner: "sub"})
	w.rec(events.RecordBody{Type: "project_post", ID: "post-w", Owner: "wanda"})
	w.rec(events.RecordBody{Type: "project_post", ID: "post-s", Owner: "sub"})
	return w
}

func containsString(xs []string, x string) bool { return contains(xs, x) }

// TestEvalTO4fImplicationsDoNotChain: with a second rule client.view -> client.edit, client.edit
// follows from a direct client.view, never from a client.view that is itself implied.
func TestEvalTO4fImplicationsDoNotChain(t *testing.T) {
	w := trackopsWorld(t)
	pol := w.m.T.Policy
	pol.Implies = append([]events.Implication{}, pol.Implies...)
	pol.Implies = append(pol.Implies, events.Implication{Permission: "client.view", Field: "client", Grants: "client.edit"})
	w.tenant(events.PolicySetV1{Policy: pol})
	w.person("cv", KindStaff, "", LevelFull, nil)
	w.principal("cv", events.PermissionGrantedV1{Grant: events.Grant{Permission: "client.view", Scope: ScopeAll}})
	w.principal("cv", events.PermissionGrantedV1{Grant: events.Grant{Permission: SessionLogin, Scope: ScopeAll}})
	runChecks(t, w, []checkCase{
		{"a direct client.view implies client.edit", "cv", "client.edit", ref("client", "c1"), true,
			"client.edit on c1 is implied by client.view on client c1, whose client is c1: a direct grant gives client.view at scope all"},
		{"an implied client.view implies nothing", "limx", "client.edit", ref("client", "c1"), false, ""},
		{"while client.view itself is implied", "limx", "client.view", ref("client", "c1"), true, "implied"},
	})
	d := w.check("limx", "client.view", ref("client", "c1"))
	for _, k := range []events.RecordRef{{Type: "invoice", ID: "inv-1"}, {Type: "client", ID: "c1"}, {Type: "case", ID: "case-7"}} {
		if body := w.m.Records[k].Prov["body"]; !containsString(d.Events, body) {
			t.Errorf("events %v lack the body of %s %s", d.Events, k.Type, k.ID)
		}
	}
}
