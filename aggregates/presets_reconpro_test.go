package aggregates

import (
	"slices"
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

// The data families of the ReconPro article, written here independently of the preset.
var (
	rpSettings = []string{"client.view", "client.edit", "employee.view", "employee.edit", "user.view",
		"user.edit", "team.view", "team.edit", "area.view", "area.edit", "service.view", "service.edit",
		"device.view", "device.edit", "type.view", "type.edit"}
	rpOperational = []string{"service_request.view", "service_request.edit", "inspection.view",
		"inspection.edit", "inspection.approve", "work_order.view", "work_order.edit", "work_order.approve",
		"invoice.view", "invoice.edit", "repair_order.view", "repair_order.edit"}
	rpReporting = []string{"report.view", "timesheet.view", "timesheet.edit"}
	rpMobile    = []string{"service_request.view", "service_request.edit", "inspection.view",
		"inspection.edit", "inspection.approve", "work_order.view", "work_order.edit", "work_order.approve",
		"repair_order.view", "repair_order.edit", "timesheet.view", "timesheet.edit"}
)

// rpGrants returns a role's grants other than session.login, as permission -> scopes.
func rpGrants(t *testing.T, id string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, g := range roleDef(t, mustPreset(t, "reconpro"), id).Grants {
		if g.Permission != SessionLogin {
			out[g.Permission] = append(out[g.Permission], g.Scope)
		}
	}
	return out
}

// lacking returns the perms that gs does not hold at scope.
func lacking(gs map[string][]string, scope string, perms []string) []string {
	var out []string
	for _, p := range perms {
		if !slices.Contains(gs[p], scope) {
			out = append(out, p)
		}
	}
	return out
}

func onlyAt(t *testing.T, id string, gs map[string][]string, scope string) {
	t.Helper()
	for p, scopes := range gs {
		for _, s := range scopes {
			if s != scope {
				t.Errorf("%s holds %s at %s, want only %s", id, p, s, scope)
			}
		}
	}
}

func TestPresetRP1Administrator(t *testing.T) {
	c := mustPreset(t, "reconpro")
	want := append(append(append([]string{ManageAccess, SessionLogin, "monitor.view", "commission.view"},
		rpSettings...), rpOperational...), rpReporting...)
	slices.Sort(want)
	if !slices.Equal(c.Policy.Permissions, want) {
		t.Errorf("policy %v\nwant %v", c.Policy.Permissions, want)
	}
	others := slices.DeleteFunc(slices.Clone(want), func(p string) bool { return p == SessionLogin })
	if l := lacking(rpGrants(t, "administrator"), ScopeAll, others); len(l) > 0 {
		t.Errorf("administrator lacks %v", l)
	}
}

func TestPresetRP2Accountant(t *testing.T) {
	gs := rpGrants(t, "accountant")
	if l := lacking(gs, ScopeAll, append(slices.Clone(rpOperational), rpReporting...)); len(l) > 0 {
		t.Errorf("accountant lacks operational or reporting %v", l)
	}
	if l := lacking(gs, ScopeAll, rpSettings); len(l) == 0 || len(l) == len(rpSettings) {
		t.Errorf("accountant should hold some settings, not all and not none; lacks %v", l)
	}
}

func TestPresetRP3Technician(t *testing.T) {
	r := roleDef(t, mustPreset(t, "reconpro"), "technician")
	if r.RequiresFeature != FeatureTechnicianUsers || !r.Exclusive {
		t.Errorf("technician %+v", r)
	}
	gs := rpGrants(t, "technician")
	onlyAt(t, "technician", gs, ScopeUnitTeam)
	for p := range gs {
		if !strings.HasPrefix(p, "repair_order.") && !slices.Contains(rpReporting, p) {
			t.Errorf("technician holds %s: not repair orders or reporting", p)
		}
	}
	if l := lacking(gs, ScopeUnitTeam, append([]string{"repair_order.view", "repair_order.edit"}, rpReporting...)); len(l) > 0 {
		t.Errorf("technician lacks %v", l)
	}
}

func TestPresetRP4RP5WorkManagers(t *testing.T) {
	wm, ro := rpGrants(t, "work_manager"), rpGrants(t, "work_manager_read_only")
	opsAndReports := append(slices.Clone(rpOperational), rpReporting...)
	onlyAt(t, "work_manager", wm, ScopeAll)
	onlyAt(t, "work_manager_read_only", ro, ScopeAll)
	for p := range wm {
		if !slices.Contains(opsAndReports, p) {
			t.Errorf("work manager holds %s: not operational or reporting", p)
		}
	}
	if l := lacking(wm, ScopeAll, opsAndReports); len(l) == 0 || len(l) == len(opsAndReports) {
		t.Errorf("work manager should hold some operational and reporting data; lacks %v", l)
	}
	var views []string
	for p := range wm {
		if strings.HasSuffix(p, ".view") {
			views = append(views, p)
		}
	}
	var got []string
	for p := range ro {
		got = append(got, p)
	}
	slices.Sort(views)
	slices.Sort(got)
	if !slices.Equal(got, views) {
		t.Errorf("RP-5 read-only holds %v, want the work manager's view actions %v", got, views)
	}
}

func TestPresetRP6toRP9UnitRoles(t *testing.T) {
	opsAndReports := append(slices.Clone(rpOperational), rpReporting...)
	cases := []struct {
		role, scope string
		settings    []string // settings it must hold; nil: none
	}{
		{"team_work_manager", ScopeUnitTeam, nil},
		{"area_work_manager", ScopeUnitArea, nil},
		{"team_administrator", ScopeUnitTeam, []string{"team.edit", "user.edit", "employee.edit", ManageAccess}},
		{"area_administrator", ScopeUnitArea, []string{"area.edit", "user.edit", "employee.edit", ManageAccess}},
	}
	for _, c := range cases {
		gs := rpGrants(t, c.role)
		onlyAt(t, c.role, gs, c.scope)
		if l := lacking(gs, c.scope, append(slices.Clone(opsAndReports), c.settings...)); len(l) > 0 {
			t.Errorf("%s lacks %v", c.role, l)
		}
		if c.settings == nil {
			for p := range gs {
				if !slices.Contains(opsAndReports, p) {
					t.Errorf("%s holds %s: not operational or reporting", c.role, p)
				}
			}
		}
	}
}

func TestPresetRP10Exclusive(t *testing.T) {
	var got []string
	for _, r := range mustPreset(t, "reconpro").Roles {
		if r.Exclusive {
			got = append(got, r.Role)
		}
	}
	want := []string{"technician", "team_work_manager", "area_work_manager", "team_administrator", "area_administrator"}
	if !slices.Equal(got, want) {
		t.Errorf("exclusive roles %v, want %v", got, want)
	}
}

func TestPresetRP11ClientRoles(t *testing.T) {
	c := mustPreset(t, "reconpro")
	clientRoles := []string{"client", "client_accountant", "client_monitor_manager", "client_inspector",
		"sales_person", "sales_person_monitor_manager"}
	most := len(roleDef(t, c, "client").Grants)
	for _, id := range clientRoles {
		r := roleDef(t, c, id)
		if !slices.Equal(r.PrincipalKinds, []string{KindClientContact}) {
			t.Errorf("%s kinds %v", id, r.PrincipalKinds)
		}
		for _, g := range r.Grants {
			if g.Permission != SessionLogin && g.Scope != ScopeClient && g.Scope != ScopeAssigned {
				t.Errorf("%s holds %v: a client role reaches its client's records only", id, g)
			}
		}
		if id != "client" && len(r.Grants) >= most {
			t.Errorf("%s has %d grants, client %d: the client role has the most", id, len(r.Grants), most)
		}
		if strings.Contains(id, "monitor") {
			if r.RequiresFeature != FeatureMonitor || len(lacking(rpGrants(t, id), ScopeClient, []string{"monitor.view"})) > 0 {
				t.Errorf("%s: feature %q, grants %v", id, r.RequiresFeature, r.Grants)
			}
		}
	}
	if l := lacking(rpGrants(t, "client_inspector"), ScopeClient, []string{"inspection.view", "inspection.approve"}); len(l) > 0 {
		t.Errorf("client inspector lacks %v", l)
	}
	if l := lacking(rpGrants(t, "sales_person"), ScopeAssigned, []string{"commission.view"}); len(l) > 0 {
		t.Errorf("sales person lacks %v", l)
	}
	// A client user sees its client's inspections only, and approves them.
	w := newWorld(t, "reconpro")
	w.person("cu", KindClientContact, "c1", LevelFull, []string{"client_inspector"})
	w.rec(events.RecordBody{Type: "inspection", ID: "i1", Client: "c1"})
	w.rec(events.RecordBody{Type: "inspection", ID: "i2", Client: "c2"})
	runChecks(t, w, []checkCase{
		{"RP-11 approves its client's inspection", "cu", "inspection.approve", ref("inspection", "i1"), true, ""},
		{"RP-11 not another client's", "cu", "inspection.approve", ref("inspection", "i2"), false, ""},
	})
}

func TestPresetRP12EmployeeRoles(t *testing.T) {
	c := mustPreset(t, "reconpro")
	for _, id := range []string{"employee", "inspector", "manager"} {
		if r := roleDef(t, c, id); !slices.Equal(r.PrincipalKinds, []string{KindEmployee}) {
			t.Errorf("%s kinds %v", id, r.PrincipalKinds)
		}
	}
	emp, insp, mgr := rpGrants(t, "employee"), rpGrants(t, "inspector"), rpGrants(t, "manager")
	for _, p := range []string{"inspection.approve", "work_order.approve"} {
		if len(emp[p]) > 0 {
			t.Errorf("employee holds %s", p)
		}
		if !slices.Contains(insp[p], ScopeAll) {
			t.Errorf("inspector lacks %s", p)
		}
	}
	if !slices.Equal(emp["timesheet.view"], []string{ScopeOwn}) {
		t.Errorf("employee timesheet.view at %v, want own only", emp["timesheet.view"])
	}
	for p, scopes := range emp {
		if !slices.Equal(insp[p], scopes) {
			t.Errorf("inspector holds %s at %v, employee at %v", p, insp[p], scopes)
		}
	}
	if len(insp) != len(emp)+2 {
		t.Errorf("inspector %v is not employee plus the two approvals", insp)
	}
	if l := lacking(mgr, ScopeAll, rpMobile); len(l) > 0 {
		t.Errorf("manager lacks %v", l)
	}
	w := newWorld(t, "reconpro")
	t1 := unit(UnitTeam, "t1")
	w.units(t1)
	w.person("ed", KindEmployee, "", LevelFull, []string{"employee"}, t1)
	w.person("em", KindEmployee, "", LevelFull, []string{"manager"}, t1)
	w.rec(events.RecordBody{Type: "timesheet", ID: "ts-ed", Owner: "ed", Units: []events.UnitRef{t1}})
	w.rec(events.RecordBody{Type: "timesheet", ID: "ts-em", Owner: "em", Units: []events.UnitRef{t1}})
	w.rec(events.RecordBody{Type: "work_order", ID: "wo-1", Units: []events.UnitRef{t1}})
	runChecks(t, w, []checkCase{
		{"RP-12 employee sees its own timesheet", "ed", "timesheet.view", ref("timesheet", "ts-ed"), true, "ed owns ts-ed"},
		{"RP-12 not a team member's", "ed", "timesheet.view", ref("timesheet", "ts-em"), false, ""},
		{"RP-12 employee cannot approve work orders", "ed", "work_order.approve", ref("work_order", "wo-1"), false, ""},
		{"RP-12 manager sees every timesheet", "em", "timesheet.view", ref("timesheet", "ts-ed"), true, ""},
		{"RP-12 manager approves", "em", "work_order.approve", ref("work_order", "wo-1"), true, ""},
	})
}

func TestPresetReconproStaffKinds(t *testing.T) {
	c := mustPreset(t, "reconpro")
	for _, id := range presetRoleIDs["reconpro"][:9] {
		if r := roleDef(t, c, id); !slices.Equal(r.PrincipalKinds, []string{KindStaff}) {
			t.Errorf("%s kinds %v, want staff", id, r.PrincipalKinds)
		}
	}
}
