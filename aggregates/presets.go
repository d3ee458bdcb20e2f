package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// PresetNames lists the presets CreateTenant accepts.
func PresetNames() []string { return slices.Clone(PresetIDs) }

// Preset returns the tenant configuration a preset starts with: its administrator role, its
// roles and its policy. Each call builds a fresh value, so callers may change what they get.
// Invariants every preset keeps (presets_test.go checks them): every role holds session.login;
// the policy names every permission any role uses, plus user.manage_access and session.login;
// the administrator role's Def.Grants list every permission of the policy (Probuild's: its
// column of the seed table, which names every permission).
func Preset(name string) (events.TenantCreatedV1, error) {
	var c events.TenantCreatedV1
	switch name {
	case "reconpro":
		c = reconpro()
	case "trackops":
		c = trackops()
	case "probuild":
		c = probuild()
	case "empty":
		c = emptyPreset()
	default:
		return events.TenantCreatedV1{}, &Error{Code: CodeInvalidArgument, Op: "CreateTenant",
			Message: "unknown preset " + name + "; known presets are reconpro, trackops, probuild, empty"}
	}
	c.Preset = name
	return c, nil
}

// emptyPreset has only the administrator role and a policy naming only what it needs.
func emptyPreset() events.TenantCreatedV1 {
	roles := []events.RoleDef{
		{Role: "administrator", PrincipalKinds: allKinds()},
	}
	return withAdmin(roles, "administrator", emptyPolicy())
}

// at returns perms at scope.
func at(scope string, perms ...string) []events.Grant {
	gs := make([]events.Grant, len(perms))
	for i, p := range perms {
		gs[i] = events.Grant{Permission: p, Scope: scope}
	}
	return gs
}

// actions returns resource.action for every resource and action.
func actions(resources []string, acts ...string) []string {
	var out []string
	for _, r := range resources {
		for _, a := range acts {
			out = append(out, r+"."+a)
		}
	}
	return out
}

// role builds a preset role; every role of every preset holds session.login.
func role(id string, kinds []string, grants ...[]events.Grant) events.RoleDef {
	def := events.RoleDef{Role: id, PrincipalKinds: kinds, Grants: at(ScopeAll, SessionLogin)}
	for _, gs := range grants {
		def.Grants = append(def.Grants, gs...)
	}
	slices.SortFunc(def.Grants, grantLess)
	def.Grants = slices.Compact(def.Grants)
	return def
}

func allKinds() []string { return []string{KindStaff, KindClientContact, KindEmployee} }

func emptyPolicy() events.Policy {
	return events.Policy{Permissions: []string{}, Unscoped: []string{}, Limited: []events.LimitedException{},
		Links: []events.LinkRule{}, Implies: []events.Implication{}}
}

// withAdmin completes a preset: the policy names every permission of the roles plus
// user.manage_access and session.login, and unless the administrator role lists grants already,
// it lists every permission of the policy at scope all (what the evaluator gives it anyway).
func withAdmin(roles []events.RoleDef, admin string, pol events.Policy) events.TenantCreatedV1 {
	names := []string{ManageAccess, SessionLogin}
	names = append(names, pol.Permissions...)
	for _, r := range roles {
		for _, g := range r.Grants {
			names = append(names, g.Permission)
		}
	}
	slices.Sort(names)
	pol.Permissions = slices.Compact(names)
	for i := range roles {
		if roles[i].Role == admin && len(roles[i].Grants) == 0 {
			roles[i].Grants = at(ScopeAll, pol.Permissions...)
		}
	}
	return events.TenantCreatedV1{AdminRole: admin, Policy: pol, Roles: roles}
}
