package aggregates

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

// The role ids of SPEC section 7 "Names that clients rely on".
var presetRoleIDs = map[string][]string{
	"reconpro": {"administrator", "accountant", "technician", "work_manager", "work_manager_read_only",
		"team_work_manager", "area_work_manager", "team_administrator", "area_administrator",
		"client", "client_accountant", "client_monitor_manager", "client_inspector", "sales_person",
		"sales_person_monitor_manager", "employee", "inspector", "manager"},
	"trackops": {"administrator", "staff", "client_contact"},
	"probuild": {"admin", "manager", "worker", "subcontractor"},
	"empty":    {"administrator"},
}

func mustPreset(t *testing.T, name string) events.TenantCreatedV1 {
	t.Helper()
	c, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roleDef(t *testing.T, c events.TenantCreatedV1, id string) events.RoleDef {
	t.Helper()
	for _, r := range c.Roles {
		if r.Role == id {
			return r
		}
	}
	t.Fatalf("preset %s has no role %s", c.Preset, id)
	return events.RoleDef{}
}

// TestPresetInvariants checks what every preset promises (SPEC sections 5 and 7).
func TestPresetInvariants(t *testing.T) {
	if got := PresetNames(); !slices.Equal(got, []string{"reconpro", "trackops", "probuild", "empty"}) {
		t.Errorf("PresetNames() = %v", got)
	}
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			c := mustPreset(t, name)
			if c.Preset != name {
				t.Errorf("preset %q", c.Preset)
			}
			var ids []string
			for _, r := range c.Roles {
				ids = append(ids, r.Role)
			}
			if !slices.Equal(ids, presetRoleIDs[name]) {
				t.Errorf("roles %v, want %v", ids, presetRoleIDs[name])
			}
			wantAdmin := "administrator"
			if name == "probuild" {
				wantAdmin = "admin"
			}
			if c.AdminRole != wantAdmin {
				t.Errorf("admin role %q, want %q", c.AdminRole, wantAdmin)
			}
			pol := c.Policy.Permissions
			if !slices.IsSorted(pol) || len(slices.Compact(slices.Clone(pol))) != len(pol) {
				t.Errorf("policy permissions not sorted and unique: %v", pol)
			}
			for _, must := range []string{ManageAccess, SessionLogin} {
				if !slices.Contains(pol, must) {
					t.Errorf("policy lacks %s", must)
				}
			}
			for _, r := range c.Roles {
				if !slices.Contains(r.Grants, events.Grant{Permission: SessionLogin, Scope: ScopeAll}) {
					t.Errorf("role %s lacks session.login", r.Role)
				}
				if len(r.PrincipalKinds) == 0 {
					t.Errorf("role %s names no kinds", r.Role)
				}
				for _, k := range r.PrincipalKinds {
					if !slices.Contains(Kinds, k) {
						t.Errorf("role %s: unknown kind %q", r.Role, k)
					}
				}
				for _, g := range r.Grants {
					if !slices.Contains(pol, g.Permission) {
						t.Errorf("role %s uses %s, which the policy does not name", r.Role, g.Permission)
					}
					if !slices.Contains(Scopes, g.Scope) {
						t.Errorf("role %s: unknown scope %q", r.Role, g.Scope)
					}
					if !validPermissionName(g.Permission) {
						t.Errorf("role %s: permission %q is not <resource>.<action> in lower snake case", r.Role, g.Permission)
					}
				}
			}
			admin := roleDef(t, c, c.AdminRole)
			for _, p := range pol {
				if !slices.Contains(admin.Grants, events.Grant{Permission: p, Scope: ScopeAll}) {
					t.Errorf("administrator role lacks %s at all", p)
				}
			}
			raw, _ := json.Marshal(c)
			if strings.Contains(string(raw), "null") {
				t.Errorf("preset has a null list: %s", raw)
			}
		})
	}
}

func validPermissionName(p string) bool {
	res, act, ok := strings.Cut(p, ".")
	if !ok || res == "" || act == "" || strings.Contains(act, ".") {
		return false
	}
	for _, r := range res + act {
		if !(r >= 'a' && r <= 'z' || r == '_' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func TestPresetUnknown(t *testing.T) {
	for _, name := range []string{"", "Trackops", "nope"} {
		if _, err := Preset(name); ErrorCode(err) != CodeInvalidArgument {
			t.Errorf("Preset(%q): %v, want invalid_argument", name, err)
		}
	}
}

// TestPresetDeepCopy: changing what Preset returned changes nothing for the next caller.
func TestPresetDeepCopy(t *testing.T) {
	for _, name := range PresetNames() {
		a, b := mustPreset(t, name), mustPreset(t, name)
		a.Policy.Permissions[0] = "x.y"
		a.Policy.Unscoped = append(a.Policy.Unscoped[:0], "x.y")
		for i := range a.Roles {
			a.Roles[i].Grants[0].Scope = "own"
			a.Roles[i].PrincipalKinds[0] = "nobody"
		}
		if c := mustPreset(t, name); !reflect.DeepEqual(b, c) {
			t.Errorf("%s: a change to one result reached another", name)
		}
	}
}

func TestPresetEmpty(t *testing.T) {
	c := mustPreset(t, "empty")
	if want := []string{SessionLogin, ManageAccess}; !slices.Equal(c.Policy.Permissions, want) {
		t.Errorf("policy %v, want %v", c.Policy.Permissions, want)
	}
	if len(c.Roles) != 1 || c.Roles[0].Role != "administrator" {
		t.Errorf("roles %+v", c.Roles)
	}
}

func TestPresetTrackops(t *testing.T) {
	c := mustPreset(t, "trackops")
	staff := roleDef(t, c, "staff")
	var want []events.Grant
	for _, res := range []string{"case", "expense", "invoice", "review", "client", "client_contact", "user"} {
		want = append(want, events.Grant{Permission: res + ".view", Scope: ScopeAll}, events.Grant{Permission: res + ".edit", Scope: ScopeAll})
	}
	want = append(want, events.Grant{Permission: "report.view", Scope: ScopeAll}, events.Grant{Permission: SessionLogin, Scope: ScopeAll})
	slices.SortFunc(want, grantLess)
	if !slices.Equal(staff.Grants, want) || !slices.Equal(staff.PrincipalKinds, []string{KindStaff}) {
		t.Errorf("staff role %+v", staff)
	}
	cc := roleDef(t, c, "client_contact")
	if want := at(ScopeAll, "case.view", "invoice.view", SessionLogin); !slices.Equal(cc.Grants, want) ||
		!slices.Equal(cc.PrincipalKinds, []string{KindClientContact}) {
		t.Errorf("client_contact role %+v", cc)
	}
	if !slices.Contains(roleDef(t, c, "administrator").Grants, events.Grant{Permission: ManageAccess, Scope: ScopeAll}) {
		t.Error("administrator lacks user.manage_access")
	}
	p := c.Policy
	if !slices.Equal(p.Unscoped, []string{"report.view"}) ||
		!reflect.DeepEqual(p.Limited, []events.LimitedException{{Permission: "client.view", Kinds: []string{KindStaff}}, {Permission: "client_contact.view", Kinds: []string{KindStaff}}}) ||
		!reflect.DeepEqual(p.Links, []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{KindStaff}}}) ||
		!reflect.DeepEqual(p.Implies, []events.Implication{{Permission: "invoice.view", Field: "client", Grants: "client.view"}}) {
		t.Errorf("policy %+v", p)
	}
}
