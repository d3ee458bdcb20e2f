package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// match is a grant of the asked permission that survived narrowing and covers the record.
// Check collects matches without provenance and builds GrantUses only when it allows, so the
// common path allocates little.
type match struct {
	grant    events.Grant // as held, before narrowing
	role     string       // "" for a direct grant
	scope    string       // after narrowing
	unscoped bool
}

// matches appends to dst p's grants of perm whose narrowed scope covers r (every grant of perm
// when r is nil). The caller has checked that p is active at a level that allows something.
// Written as plain loops, not with eachGrant's callbacks, to keep dst on the caller's stack.
func matches(f Facts, t *Tenant, p *Principal, perm string, r *Record, dst []match) []match {
	if contains(p.Denied, perm) {
		return dst
	}
	for _, id := range p.Roles {
		role, ok := activeRole(t, id)
		switch {
		case !ok:
		case id == t.AdminRole:
			if t.KnowsPermission(perm) {
				dst = consider(f, t, p, r, dst, events.Grant{Permission: perm, Scope: ScopeAll}, id)
			}
		default:
			for _, g := range role.Def.Grants {
				if g.Permission == perm {
					dst = consider(f, t, p, r, dst, g, id)
				}
			}
		}
	}
	for _, g := range p.Grants {
		if g.Permission == perm {
			dst = consider(f, t, p, r, dst, g, "")
		}
	}
	return dst
}

func consider(f Facts, t *Tenant, p *Principal, r *Record, dst []match, g events.Grant, role string) []match {
	s, unscoped := NarrowScope(t, p, g.Permission, g.Scope)
	if r != nil && !Covers(f, p, s, r) {
		return dst
	}
	return append(dst, match{grant: g, role: role, scope: s, unscoped: unscoped})
}

func (m match) use(t *Tenant, p *Principal) GrantUse {
	u := grantUse(t, p, m.grant, m.role)
	u.Scope, u.Unscoped = m.scope, m.unscoped
	if m.scope != m.grant.Scope {
		u.NarrowedFrom = m.grant.Scope
	}
	return u
}

// allow builds the Decision of a permission allowed by ms (not empty).
func allow(f Facts, t *Tenant, p *Principal, r *Record, ms []match) Decision {
	d := Decision{Allowed: true, Grants: make([]GrantUse, 0, len(ms))}
	for _, m := range ms {
		d.Grants = append(d.Grants, m.use(t, p))
	}
	slices.SortFunc(d.Grants, grantUseLess)
	var evs []string
	for _, u := range d.Grants {
		for _, e := range u.Events {
			evs = addEvent(evs, e)
		}
	}
	d.Reason = grantPhrase(p, d.Grants[0])
	if r == nil {
		d.Reason += "; asked without a record, holding it at any scope is enough"
	} else {
		for i, u := range d.Grants {
			var why string
			why, evs = explainCover(f, p, u.Scope, r, evs)
			if i == 0 {
				d.Reason += "; " + why
			}
		}
	}
	d.Events = sortedEvents(evs)
	return d
}

// grantPhrase says where a grant comes from and how it was narrowed, as in SPEC section 7:
// "role accountant grants invoice.view at scope all, narrowed by access level limited to assigned".
func grantPhrase(p *Principal, u GrantUse) string {
	from := u.Scope
	if u.NarrowedFrom != "" {
		from = u.NarrowedFrom
	}
	s := "a direct grant gives " + u.Permission + " at scope " + from
	if u.Source != "direct" {
		s = u.Source[len("role:"):]
		s = "role " + s + " grants " + u.Permission + " at scope " + from
	}
	switch {
	case u.Unscoped:
		s += ", not narrowed by access level " + p.Level + " because " + u.Permission + " is unscoped"
	case u.NarrowedFrom == ScopeAll && u.Scope == ScopeClient && p.Kind == KindClientContact:
		s += ", narrowed for a client contact to client"
	case u.NarrowedFrom != "":
		s += ", narrowed by access level " + p.Level + " to " + u.Scope
	case p.Level == LevelLimited && u.Scope != ScopeOwn && u.Scope != ScopeAssigned:
		s += ", kept at access level limited by the policy's exception for " + u.Permission + " and kind " + p.Kind
	}
	return s
}

// notCovered is the refusal when no grant allowed: either p holds no grant of perm at all, or
// none of its narrowed grants covers r.
func notCovered(f Facts, t *Tenant, p *Principal, perm string, r *Record) Decision {
	held := NarrowedGrants(t, p, perm)
	if len(held) == 0 {
		return refuse("no role or direct grant of " + p.ID + " gives " + perm + gatedNote(t, p, perm))
	}
	var evs []string
	scopes := ""
	for i, u := range held {
		for _, e := range u.Events {
			evs = addEvent(evs, e)
		}
		if i > 0 {
			scopes += ", "
		}
		scopes += u.Scope
		if u.NarrowedFrom != "" {
			scopes += " (narrowed by access level " + p.Level + " from " + u.NarrowedFrom + ")"
		}
	}
	evs = addEvent(evs, r.Prov["body"])
	d := refuse(p.ID + " holds " + perm + " only at scope " + scopes + ", which does not cover " + r.Type + " " + r.ID)
	if p.Kind == KindClientContact && r.Client != p.Client {
		d.Reason += " (a client contact sees only its own client's records)"
	}
	d.Events = sortedEvents(evs)
	return d
}

// gatedNote mentions the roles of p that would give perm but require a feature the tenant lacks.
func gatedNote(t *Tenant, p *Principal, perm string) string {
	for _, id := range p.Roles {
		r := t.Roles[id]
		if r == nil || r.Def.RequiresFeature == "" || t.HasFeature(r.Def.RequiresFeature) {
			continue
		}
		for _, g := range r.Def.Grants {
			if g.Permission == perm {
				return " (role " + id + " would, but the tenant's subscription lacks feature " + r.Def.RequiresFeature + ")"
			}
		}
	}
	return ""
}

func sortedEvents(evs []string) []string {
	if evs == nil {
		return []string{}
	}
	slices.Sort(evs)
	return evs
}
