package aggregates

import (
	"slices"
	"strings"

	"github.com/acl-es/acl/events"
)

// A principal's grants come from two sources, in this order: its roles (ascending id), then its
// direct grants. A role gives nothing when it no longer exists or when it requires a feature the
// tenant's subscription lacks. The tenant's administrator role gives every permission of the
// policy at scope all, whatever its Def.Grants say, so names added later by SetPolicy are held
// too (SPEC section 5). A directly denied permission is never part of the effective grants.

// activeRole returns the role id of the tenant when it gives grants to its holders.
func activeRole(t *Tenant, id string) (*Role, bool) {
	r := t.Roles[id]
	if r == nil {
		return nil, false
	}
	if f := r.Def.RequiresFeature; f != "" && !t.HasFeature(f) {
		return nil, false
	}
	return r, true
}

// eachRoleGrant calls fn with every grant that role id gives (perm "" means every permission).
// It stops and returns false when fn does.
func eachRoleGrant(t *Tenant, id, perm string, fn func(events.Grant) bool) bool {
	r, ok := activeRole(t, id)
	if !ok {
		return true
	}
	if id == t.AdminRole {
		if perm != "" {
			if t.KnowsPermission(perm) {
				return fn(events.Grant{Permission: perm, Scope: ScopeAll})
			}
			return true
		}
		for _, name := range t.Policy.Permissions {
			if !fn(events.Grant{Permission: name, Scope: ScopeAll}) {
				return false
			}
		}
		return true
	}
	for _, g := range r.Def.Grants {
		if (perm == "" || g.Permission == perm) && !fn(g) {
			return false
		}
	}
	return true
}

// eachGrant calls fn with every effective grant of p before narrowing (perm "" means every
// permission), with the role it comes from ("" for a direct grant), skipping denied permissions.
func eachGrant(t *Tenant, p *Principal, perm string, fn func(g events.Grant, role string) bool) {
	for _, id := range p.Roles {
		ok := eachRoleGrant(t, id, perm, func(g events.Grant) bool {
			if contains(p.Denied, g.Permission) {
				return true
			}
			return fn(g, id)
		})
		if !ok {
			return
		}
	}
	for _, g := range p.Grants {
		if (perm == "" || g.Permission == perm) && !contains(p.Denied, g.Permission) && !fn(g, "") {
			return
		}
	}
}

// grantUse is a grant with its provenance (see provenance).
func grantUse(t *Tenant, p *Principal, g events.Grant, role string) GrantUse {
	u := GrantUse{Permission: g.Permission, Scope: g.Scope, Source: "direct", Events: provenance(t, p, g, role, make([]string, 0, 3))}
	if role != "" {
		u.Source = "role:" + role
	}
	return u
}

// provenance adds to evs (addEvent) the events behind p's grant g from role ("" for a direct
// grant), at most three: the role assignment event, then the event that put the grant in the
// role (for the administrator role: the event that set the policy naming it, since the policy
// is what gives it), or the direct grant event; then the access level event.
func provenance(t *Tenant, p *Principal, g events.Grant, role string, evs []string) []string {
	if role == "" {
		evs = addEvent(evs, lookup(p.Prov, "grant:", g.Permission, "|", g.Scope))
	} else {
		evs = addEvent(evs, lookup(p.Prov, "role:", role))
		if role == t.AdminRole {
			evs = addEvent(evs, t.PolicyEvent)
		} else if r := t.Roles[role]; r != nil {
			evs = addEvent(evs, lookup(r.GrantEvents, g.Permission, "|", g.Scope))
		}
	}
	return addEvent(evs, p.Prov["level"])
}

// lookup returns m[the concatenation of parts] without allocating the key (for keys up to 64
// bytes): the key is built on the stack and the map is indexed with its bytes.
func lookup(m map[string]string, parts ...string) string {
	var buf [64]byte
	k := buf[:0]
	for _, s := range parts {
		k = append(k, s...)
	}
	return m[string(k)]
}

// EffectiveGrants returns the grants of p's roles (a role whose required feature the tenant
// lacks gives nothing; the administrator role gives every permission of the policy at scope all)
// plus its direct grants, minus directly denied permissions, before narrowing: sorted by
// permission, scope, source; never nil. A grant held through several sources appears once per
// source. Removal and access level do not change this list (NarrowedGrants applies them).
func EffectiveGrants(t *Tenant, p *Principal) []GrantUse {
	out := []GrantUse{}
	if p == nil || !p.Exists {
		return out
	}
	eachGrant(t, p, "", func(g events.Grant, role string) bool {
		out = append(out, grantUse(t, p, g, role))
		return true
	})
	slices.SortFunc(out, grantUseLess)
	return out
}

// NarrowedGrants returns p's effective grants of perm (every permission when perm is "") after
// narrowing by kind and access level (see NarrowScope): Scope is the narrowed scope,
// NarrowedFrom the original when it changed. Empty, never nil, for a removed principal or one
// whose level is disabled (or unknown).
func NarrowedGrants(t *Tenant, p *Principal, perm string) []GrantUse {
	out := []GrantUse{}
	if !p.Active() || !levelAllows(p.Level) {
		return out
	}
	eachGrant(t, p, perm, func(g events.Grant, role string) bool {
		u := grantUse(t, p, g, role)
		u.Scope, u.Unscoped = NarrowScope(t, p, g.Permission, g.Scope)
		if u.Scope != g.Scope {
			u.NarrowedFrom = g.Scope
		}
		out = append(out, u)
		return true
	})
	slices.SortFunc(out, grantUseLess)
	return out
}

// AnyNarrowedScope reports whether fn accepts the narrowed scope of one of p's grants of perm,
// in no particular order: NarrowedGrants without building provenance, which a yes-or-no
// question (who may view this record) does not need and which was most of its cost.
func AnyNarrowedScope(t *Tenant, p *Principal, perm string, fn func(scope string) bool) bool {
	if !p.Active() || !levelAllows(p.Level) {
		return false
	}
	found := false
	eachGrant(t, p, perm, func(g events.Grant, _ string) bool {
		scope, _ := NarrowScope(t, p, g.Permission, g.Scope)
		found = fn(scope)
		return !found
	})
	return found
}

// Holds reports whether p holds perm at scope for the escalation guard of SPEC section 5: one of
// its effective grants (before narrowing by its own access level) has perm at scope all or at
// scope. False for a principal that is not active.
func Holds(t *Tenant, p *Principal, perm, scope string) bool {
	if !p.Active() {
		return false
	}
	held := false
	eachGrant(t, p, perm, func(g events.Grant, _ string) bool {
		held = g.Scope == ScopeAll || g.Scope == scope
		return !held
	})
	return held
}

// levelAllows reports whether an access level allows anything: disabled and unknown levels
// allow nothing (SPEC section 2, rule 1).
func levelAllows(level string) bool {
	return level == LevelFull || level == LevelFullLocation || level == LevelLimited
}

// NarrowScope narrows the scope of p's grant of perm, in the order of SPEC section 2:
//  1. a client contact's all becomes client (Covers also confines every scope of a client
//     contact to its own client);
//  2. full_location: all becomes unit:location, unless the policy lists perm as unscoped, which
//     keeps all and answers unscoped=true;
//     limited: all, client and unit:* become assigned, unless the policy's limited exceptions
//     keep perm's scope for p's kind.
//
// full changes nothing; own and assigned never change. The caller excludes disabled principals.
func NarrowScope(t *Tenant, p *Principal, perm, scope string) (narrowed string, unscoped bool) {
	s := scope
	if p.Kind == KindClientContact && s == ScopeAll {
		s = ScopeClient
	}
	switch p.Level {
	case LevelFullLocation:
		if s == ScopeAll {
			if contains(t.Policy.Unscoped, perm) {
				return s, true
			}
			s = ScopeUnitLocation
		}
	case LevelLimited:
		if (s == ScopeAll || s == ScopeClient || isUnitScope(s)) && !limitedException(t, perm, p.Kind) {
			s = ScopeAssigned
		}
	}
	return s, false
}

// limitedException reports whether the policy keeps perm's scope at level limited for kind.
func limitedException(t *Tenant, perm, kind string) bool {
	for _, e := range t.Policy.Limited {
		if e.Permission == perm && contains(e.Kinds, kind) {
			return true
		}
	}
	return false
}

func isUnitScope(s string) bool { return strings.HasPrefix(s, "unit:") }

func grantUseLess(a, b GrantUse) int {
	if c := grantLess(events.Grant{Permission: a.Permission, Scope: a.Scope},
		events.Grant{Permission: b.Permission, Scope: b.Scope}); c != 0 {
		return c
	}
	return strCmp(a.Source, b.Source)
}

// addEvent appends id unless it is empty or already there (lists are short).
// Ids of one length (uuids) differ mostly in their last bytes, which are compared first.
func addEvent(evs []string, id string) []string {
	n := len(id)
	if n == 0 {
		return evs
	}
	for _, e := range evs {
		if len(e) == n && e[n-1] == id[n-1] && e == id {
			return evs
		}
	}
	return append(evs, id)
}
