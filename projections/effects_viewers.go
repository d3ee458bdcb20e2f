package projections

import (
	"bytes"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// viewersOf adds to set every principal whose view of record typ/id may differ between side b
// and side a, for a principal whose own state and grants are the same on both sides (the
// others are candidates already: replaced principals, holders of changed roles). A record is
// viewed through a narrowed grant's scope (aggregates.Covers) or, for a client, through an
// implication rule; each scope can change its verdict only when the record's facts it reads
// change, and each has an index of who it can cover:
//
//   - own, assigned: the record's owner and assignees, and the assignees of the records it
//     links to under a link rule, on either side (read whatever changed: they are few);
//   - client (and every scope of a client contact): the principals of the record's client on
//     either side, when its client or its being active differs (client index);
//   - unit:K: the members of the units it joins or leaves, or of all its units when its being
//     active differs (unit index);
//   - all: the principals whose narrowed grant of <typ>.view is at all (holders of roles giving
//     it at all, and of direct grants), only when its being active differs: otherwise they see
//     it on both sides;
//   - implication (a client C, viewed by who may view a record of the implying type whose
//     client is C): the viewers of a touched implying record (it is touched itself, and when
//     its client or its being active differs, all its viewers by the scopes above, unit members
//     included, are added), and the all-holders of the implying permission when C having an
//     active implying record differs between the sides; when C itself is registered or removed,
//     the viewers by every scope of each of its implying records on the side where C is active,
//     and the all-holders (impliedViewers).
//
// So the cost of a record change grows with who may see the record before or after, not with
// the tenant's principals.
func viewersOf(b, a *side, typ, id string, implying map[string]bool, set map[string]bool) error {
	rb, ra := b.Record(typ, id), a.Record(typ, id)
	actB, actA := rb.Active(), ra.Active()
	flip := actB != actA
	clientChanged := flip || (actB && actA && rb.Client != ra.Client)
	v := b.v
	for _, sr := range []struct {
		s *side
		r *aggregates.Record
	}{{b, rb}, {a, ra}} {
		r := sr.r
		if !r.Active() {
			continue
		}
		addAssigned(sr.s, typ, r, set)
		if clientChanged && r.Client != "" {
			if err := principalsUnder(v, set, string(tagClient), r.Client); err != nil {
				return err
			}
		}
		// Unit members: of the units on one side only, or of every unit when the record's
		// being active, or (for an implying record) its client, differs.
		other := ra
		if sr.s == a {
			other = rb
		}
		for _, u := range r.Units {
			if !flip && !(implying[typ] && clientChanged) && hasUnit(other, u) {
				continue
			}
			if err := principalsUnder(v, set, string(tagUnit), u.Kind, u.ID); err != nil {
				return err
			}
		}
	}
	if flip {
		if err := allHolders(b, a, typ+".view", set); err != nil {
			return err
		}
	}
	if aggregates.IsClientRecordType(typ) {
		perms := map[string]bool{}
		for _, s := range []*side{b, a} {
			for _, rule := range s.v.t.Policy.Implies {
				if rule.Grants == typ+".view" && rule.Field == "client" {
					perms[rule.Permission] = true
				}
			}
		}
		for perm := range perms {
			it := aggregates.PermissionType(perm)
			if flip {
				// The client itself registered or removed: who sees it through the rule on
				// the side where it is active sees it on that side only, whatever their view
				// of the implying records (implied asks the client record to be active).
				if err := impliedViewers([2]*side{b, a}, [2]*aggregates.Record{rb, ra}, it, id, perm, set); err != nil {
					return err
				}
				continue
			}
			hb, err := b.anyWithClient(it, id)
			if err != nil {
				return err
			}
			ha, err := a.anyWithClient(it, id)
			if err != nil {
				return err
			}
			if hb != ha {
				if err := allHolders(b, a, perm, set); err != nil {
					return err
				}
			}
		}
	}
	if b.v.err != nil {
		return b.v.err
	}
	return a.v.err
}

// impliedViewers adds to set, for a client record active on one side only, every principal that
// may view an active record of type it whose client it is, on the side where the client is
// active: by each scope that can cover that record (its owner and assignees and those of the
// records it links to, the principals of its client, the members of its units) and the
// all-holders of perm, the implying permission. Its cost grows with the client's records of
// that type, paid when a client is registered or removed.
func impliedViewers(sides [2]*side, clientRecs [2]*aggregates.Record, it, client, perm string, set map[string]bool) error {
	found, clients := false, false
	units := map[events.UnitRef]bool{}
	var err error
	for i, s := range sides {
		if !clientRecs[i].Active() {
			continue
		}
		s.RecordsWithClient(it, client, func(r *aggregates.Record) bool {
			found = true
			addAssigned(s, it, r, set)
			for _, u := range r.Units {
				if !units[u] && err == nil {
					units[u] = true
					err = principalsUnder(s.v, set, string(tagUnit), u.Kind, u.ID)
				}
			}
			if !clients && err == nil {
				clients = true
				err = principalsUnder(s.v, set, string(tagClient), client)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	if !found {
		return nil
	}
	return allHolders(sides[0], sides[1], perm, set)
}

// addAssigned adds to set the principals record typ r names on side s: its owner, its
// assignees, and the assignees of the records it links to under a link rule of typ.
func addAssigned(s *side, typ string, r *aggregates.Record, set map[string]bool) {
	if r.Owner != "" {
		set[r.Owner] = true
	}
	for _, as := range r.Assignees {
		set[as.Principal] = true
	}
	for _, rule := range s.v.t.Policy.Links {
		if rule.Type != typ {
			continue
		}
		for _, l := range r.Links {
			if l.Type != rule.Via {
				continue
			}
			if via := s.Record(l.Type, l.ID); via.Active() {
				for _, as := range via.Assignees {
					set[as.Principal] = true
				}
			}
		}
	}
}

func hasUnit(r *aggregates.Record, u events.UnitRef) bool {
	for _, x := range r.Units {
		if x == u {
			return true
		}
	}
	return false
}

// principalsUnder adds to set the principals listed, as the records they are, in the index
// range <tenant> <tag> <parts...> <principal record type>: by client or by unit.
func principalsUnder(v *view, set map[string]bool, tag string, parts ...string) error {
	for _, kind := range []string{aggregates.KindStaff, aggregates.KindEmployee, aggregates.KindClientContact} {
		prefix := key(nil, append([]string{v.tenant, tag}, append(parts, aggregates.PrincipalRecordType(kind))...)...)
		err := v.scan(prefix, nil, func(k, _ []byte) bool {
			pid, _, _ := bytes.Cut(k[len(prefix):], []byte{sep})
			set[string(pid)] = true
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// allHolders adds to set the principals whose narrowed grants of perm include scope all on
// side b or a. Narrowing never widens a scope to all, so they hold a role that gives perm at
// all (any permission, for the administrator role) or a direct grant of perm. A role holder's
// entry carries what narrowing reads of it (roleHolderValue), so holders are decided from the
// index: only direct grant holders, holders who deny something and entries without the value
// are read (a registration read every one of the 10^4 staff of the compare shape, 10^5 at 10^6).
func allHolders(b, a *side, perm string, set map[string]bool) error {
	v := b.v
	type source struct {
		prefix []byte
		role   string // "" for the direct grants
	}
	var sources []source
	seen := map[string]bool{}
	for _, t := range []*aggregates.Tenant{b.v.t, a.v.t} {
		for id, role := range t.Roles {
			if seen[id] || !givesAtAll(t, id, role, perm) {
				continue
			}
			seen[id] = true
			sources = append(sources, source{key(nil, v.tenant, string(tagRole), id), id})
		}
	}
	sources = append(sources, source{prefix: key(nil, v.tenant, string(tagDirect), perm)})
	isAll := func(scope string) bool { return scope == aggregates.ScopeAll }
	var ids []string
	for _, src := range sources {
		// Per value of this role's entries: whether such a holder has it at all (-1: read it).
		atAll := map[string]int8{}
		err := v.scan(src.prefix, nil, func(k, val []byte) bool {
			if set[string(k[len(src.prefix):len(k)-1])] {
				return true
			}
			all, known := atAll[string(val)]
			if !known {
				all = -1
				if h, ok := parseRoleHolder(val); ok && src.role != "" && !h.denies {
					// The holder's grants through this role, as the evaluator narrows them: its
					// other roles and its direct grants are sources of their own.
					p := &aggregates.Principal{Exists: true, Kind: h.kind, Level: h.level, Roles: []string{src.role}}
					all = 0
					if aggregates.AnyNarrowedScope(b.v.t, p, perm, isAll) || aggregates.AnyNarrowedScope(a.v.t, p, perm, isAll) {
						all = 1
					}
				}
				atAll[string(val)] = all
			}
			switch all {
			case 1:
				set[string(k[len(src.prefix):len(k)-1])] = true
			case -1:
				ids = append(ids, string(k[len(src.prefix):len(k)-1]))
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	// Those not in set yet are replaced on neither side: the snapshot's state is theirs on both.
	return v.principals(ids, func(p *aggregates.Principal) {
		if aggregates.AnyNarrowedScope(b.v.t, p, perm, isAll) || aggregates.AnyNarrowedScope(a.v.t, p, perm, isAll) {
			set[p.ID] = true
			b.read.ps[p.ID] = p
		}
	})
}

// givesAtAll reports whether role id of t gives perm at scope all (before narrowing).
func givesAtAll(t *aggregates.Tenant, id string, role *aggregates.Role, perm string) bool {
	if id == t.AdminRole {
		return t.KnowsPermission(perm)
	}
	for _, g := range role.Def.Grants {
		if g.Permission == perm && g.Scope == aggregates.ScopeAll {
			return true
		}
	}
	return false
}

// anyWithClient reports whether this side has an active record of typ whose client is client:
// one in the snapshot's client index that the side does not replace, or one it replaces.
func (s *side) anyWithClient(typ, client string) (bool, error) {
	found := false
	prefix := key(nil, s.v.tenant, string(tagClient), client, typ)
	err := s.v.scan(prefix, nil, func(k, _ []byte) bool {
		id, _, _ := bytes.Cut(k[len(prefix):], []byte{sep})
		found = !s.replaced(typ, string(id))
		return !found
	})
	if err != nil || found {
		return found, err
	}
	if aggregates.IsPrincipalRecordType(typ) {
		for _, p := range s.ps {
			if r := aggregates.PrincipalAsRecord(p); r != nil && r.Type == typ && r.Client == client {
				return true, nil
			}
		}
		return false, nil
	}
	for ref, r := range s.rs {
		if ref.Type == typ && r.Active() && r.Client == client {
			return true, nil
		}
	}
	return false, nil
}
