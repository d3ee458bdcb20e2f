package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// match is a grant of the asked permission that survived narrowing, and whether its narrowed
// scope covers the record. Check collects matches without provenance and builds GrantUses only
// for the answer it gives, so the common path allocates little.
type match struct {
	grant    events.Grant // as held, before narrowing
	role     string       // "" for a direct grant
	scope    string       // after narrowing
	unscoped bool
	covers   bool // the narrowed scope covers the record (always, asked without a record)
}

// held appends to dst p's grants of perm, narrowed, in the order of eachGrant (roles, then
// direct grants): the grants NarrowedGrants(t, p, perm) lists before sorting. The caller has
// checked that p is active at a level that allows something. Written as plain loops, not with
// eachGrant's callbacks, to keep dst on the caller's stack.
func held(t *Tenant, p *Principal, perm string, dst []match) []match {
	if contains(p.Denied, perm) {
		return dst
	}
	for _, id := range p.Roles {
		role, ok := activeRole(t, id)
		switch {
		case !ok:
		case id == t.AdminRole:
			if t.KnowsPermission(perm) {
				dst = narrowed(t, p, dst, events.Grant{Permission: perm, Scope: ScopeAll}, id)
			}
		default:
			for _, g := range role.Def.Grants {
				if g.Permission == perm {
					dst = narrowed(t, p, dst, g, id)
				}
			}
		}
	}
	for _, g := range p.Grants {
		if g.Permission == perm {
			dst = narrowed(t, p, dst, g, "")
		}
	}
	return dst
}

func narrowed(t *Tenant, p *Principal, dst []match, g events.Grant, role string) []match {
	s, unscoped := NarrowScope(t, p, g.Permission, g.Scope)
	return append(dst, match{grant: g, role: role, scope: s, unscoped: unscoped, covers: true})
}

// cover sets each match's covers for r (nil: every grant covers) and reports whether one does.
func cover(f Facts, p *Principal, r *Record, ms []match, a *assignMemo) bool {
	ok := false
	for i := range ms {
		ms[i].covers = r == nil || covers(f, p, ms[i].scope, r, a)
		ok = ok || ms[i].covers
	}
	return ok
}

func (m *match) use(t *Tenant, p *Principal, evs []string) GrantUse {
	u := GrantUse{Permission: m.grant.Permission, Scope: m.scope, Source: "direct", Unscoped: m.unscoped,
		Events: provenance(t, p, m.grant, m.role, evs)}
	if m.role != "" {
		u.Source = "role:" + m.role
	}
	if m.scope != m.grant.Scope {
		u.NarrowedFrom = m.grant.Scope
	}
	return u
}

// matchLess orders matches of one permission as grantUseLess orders their GrantUses: by
// narrowed scope, then source ("direct" before "role:<id>", roles by id).
func matchLess(a, b match) int {
	if c := strCmp(a.scope, b.scope); c != 0 {
		return c
	}
	switch {
	case a.role == b.role:
		return 0
	case a.role == "":
		return -1
	case b.role == "":
		return 1
	}
	return strCmp(a.role, b.role)
}

// allow builds the Decision of a permission allowed by the matches of ms that cover r (at
// least one). Only the first grant, the one the reason explains, has its cover explained in
// words; the others add their events.
func allow(f Facts, t *Tenant, p *Principal, r *Record, ms []match, a *assignMemo) Decision {
	n := 0
	for i := range ms {
		if ms[i].covers {
			n++
		}
	}
	// One backing array for the grants' events (at most 3 each: see provenance) and the
	// decision's (theirs and the cover's, at most 3 per grant more).
	all := make([]string, 6*n+3)
	d := Decision{Allowed: true, Grants: make([]GrantUse, 0, n)}
	for i := range ms {
		if m := &ms[i]; m.covers {
			k := 3 * len(d.Grants)
			d.Grants = append(d.Grants, m.use(t, p, all[k:k:k+3]))
		}
	}
	slices.SortFunc(d.Grants, grantUseLess)
	evs := all[3*n : 3*n]
	for _, u := range d.Grants {
		for _, e := range u.Events {
			evs = addEvent(evs, e)
		}
	}
	var buf [256]byte
	why := grantPhrase(buf[:0], p, &d.Grants[0])
	if r == nil {
		why = append(why, "; asked without a record, holding it at any scope is enough"...)
	} else {
		why = append(why, "; "...)
		evs, why = explainCover(f, p, d.Grants[0].Scope, r, a, evs, why, true)
		for i := 1; i < len(d.Grants); i++ {
			evs, _ = explainCover(f, p, d.Grants[i].Scope, r, a, evs, nil, false)
		}
	}
	d.Reason = string(why)
	d.Events = sortedEvents(evs)
	return d
}

// grantPhrase appends to b where a grant comes from and how it was narrowed, as in SPEC
// section 7: "role accountant grants invoice.view at scope all, narrowed by access level
// limited to assigned".
func grantPhrase(b []byte, p *Principal, u *GrantUse) []byte {
	from := u.Scope
	if u.NarrowedFrom != "" {
		from = u.NarrowedFrom
	}
	if u.Source != "direct" {
		b = words(b, "role ", u.Source[len("role:"):], " grants ", u.Permission, " at scope ", from)
	} else {
		b = words(b, "a direct grant gives ", u.Permission, " at scope ", from)
	}
	switch {
	case u.Unscoped:
		b = words(b, ", not narrowed by access level ", p.Level, " because ", u.Permission, " is unscoped")
	case u.NarrowedFrom == ScopeAll && u.Scope == ScopeClient && p.Kind == KindClientContact:
		b = append(b, ", narrowed for a client contact to client"...)
	case u.NarrowedFrom != "":
		b = words(b, ", narrowed by access level ", p.Level, " to ", u.Scope)
	case p.Level == LevelLimited && u.Scope != ScopeOwn && u.Scope != ScopeAssigned:
		b = words(b, ", kept at access level limited by the policy's exception for ", u.Permission, " and kind ", p.Kind)
	}
	return b
}

// words appends parts to b: explanations are built in a buffer on the caller's stack and
// copied once into the answer's string.
func words(b []byte, parts ...string) []byte {
	for _, s := range parts {
		b = append(b, s...)
	}
	return b
}

// notCovered is the refusal when no grant allowed: either p holds no grant of perm at all (hs
// is empty), or none of its narrowed grants hs covers r.
func notCovered(t *Tenant, p *Principal, perm string, r *Record, hs []match) Decision {
	if len(hs) == 0 {
		return refuse("no role or direct grant of " + p.ID + " gives " + perm + gatedNote(t, p, perm))
	}
	// The order of NarrowedGrants(t, p, perm): the same sort of the same sequence.
	slices.SortFunc(hs, matchLess)
	evs := make([]string, 0, 3*len(hs)+1)
	var buf [256]byte
	b := words(buf[:0], p.ID, " holds ", perm, " only at scope ")
	for i := range hs {
		h := &hs[i]
		evs = provenance(t, p, h.grant, h.role, evs)
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, h.scope...)
		if h.scope != h.grant.Scope {
			b = words(b, " (narrowed by access level ", p.Level, " from ", h.grant.Scope, ")")
		}
	}
	evs = addEvent(evs, r.Prov["body"])
	b = words(b, ", which does not cover ", r.Type, " ", r.ID)
	if p.Kind == KindClientContact && r.Client != p.Client {
		b = append(b, " (a client contact sees only its own client's records)"...)
	}
	return Decision{Reason: string(b), Grants: []GrantUse{}, Events: sortedEvents(evs)}
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
