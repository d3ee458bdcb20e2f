package aggregates

import (
	"strings"

	"github.com/acl-es/acl/events"
)

// Covers reports whether the narrowed scope of p's grant covers record r (SPEC section 2):
//   - a client contact's scopes cover only records whose client is the contact's client, so it
//     never sees staff records (they have no client) or another client's records;
//   - all: every record;
//   - client: p has a client and r.Client is that client;
//   - unit:K: p and r share a unit of kind K (a unit record's unit is itself);
//   - own: r.Owner is p;
//   - assigned: p holds any relation to r (owning is not one), or a link rule of the policy
//     with Type r.Type and p's kind among its Kinds, and a link of r to an active record of
//     type Via to which p holds a relation;
//   - any other scope: nothing.
func Covers(f Facts, p *Principal, scope string, r *Record) bool { return covers(f, p, scope, r, nil) }

// covers is Covers, finding p's assignment to r through a (nil: afresh).
func covers(f Facts, p *Principal, scope string, r *Record, a *assignMemo) bool {
	if p.Kind == KindClientContact && (p.Client == "" || r.Client != p.Client) {
		return false
	}
	switch scope {
	case ScopeAll:
		return true
	case ScopeClient:
		return p.Client != "" && r.Client == p.Client
	case ScopeOwn:
		return r.Owner == p.ID
	case ScopeAssigned:
		_, _, ok := a.get(f, p, r)
		return ok
	}
	if kind, ok := strings.CutPrefix(scope, "unit:"); ok {
		_, ok := sharedUnit(p, r, kind)
		return ok
	}
	return false
}

// assignment finds p's relation to r: directly (via nil), or through the first link rule and
// link that connect r to an active record via to which p holds relation rel.
func assignment(f Facts, p *Principal, r *Record) (rel string, via *Record, ok bool) {
	if rel, ok := relation(r, p.ID); ok {
		return rel, nil, true
	}
	for _, rule := range f.Tenant().Policy.Links {
		if rule.Type != r.Type || !contains(rule.Kinds, p.Kind) {
			continue
		}
		for _, l := range r.Links {
			if l.Type != rule.Via {
				continue
			}
			lr := f.Record(l.Type, l.ID)
			if !lr.Active() {
				continue // a link to a missing or removed record connects nothing
			}
			if rel, ok := relation(lr, p.ID); ok {
				return rel, lr, true
			}
		}
	}
	return "", nil, false
}

// assignMemo remembers assignment(f, p, r) for one principal and record, so that a check
// reads the linked records once however many of its grants are at scope assigned, and its
// explanation does not read them again.
type assignMemo struct {
	done bool
	rel  string
	via  *Record
	ok   bool
}

// get returns assignment(f, p, r), computed on first use (every use, a nil a).
func (a *assignMemo) get(f Facts, p *Principal, r *Record) (rel string, via *Record, ok bool) {
	if a == nil {
		return assignment(f, p, r)
	}
	if !a.done {
		a.rel, a.via, a.ok = assignment(f, p, r)
		a.done = true
	}
	return a.rel, a.via, a.ok
}

// relation returns the first relation (in relation order) principal holds to r.
func relation(r *Record, principal string) (string, bool) {
	for _, a := range r.Assignees {
		if a.Principal == principal {
			return a.Relation, true
		}
	}
	return "", false
}

// sharedUnit returns the first unit of kind that p and r both belong to.
func sharedUnit(p *Principal, r *Record, kind string) (events.UnitRef, bool) {
	for _, u := range p.Units {
		if u.Kind != kind {
			continue
		}
		for _, ru := range r.Units {
			if ru == u {
				return u, true
			}
		}
	}
	return events.UnitRef{}, false
}

// explainCover adds to evs the events behind the facts that make scope cover r for p (Covers
// must hold): p's client or unit membership, r's body (owner, client, units, links), the
// assignment, and the linked record's body and assignment. With text, it also appends to why
// the reason.
func explainCover(f Facts, p *Principal, scope string, r *Record, a *assignMemo, evs []string, why []byte, text bool) ([]string, []byte) {
	evs = addEvent(evs, r.Prov["body"])
	switch scope {
	case ScopeAll:
		if text {
			why = words(why, "scope all covers ", r.ID)
		}
		return evs, why
	case ScopeClient:
		if text {
			why = words(why, r.ID, " belongs to ", p.ID, "'s client ", p.Client)
		}
		return addEvent(evs, p.Prov["registered"]), why
	case ScopeOwn:
		if text {
			why = words(why, p.ID, " owns ", r.ID)
		}
		return evs, why
	case ScopeAssigned:
		rel, via, _ := a.get(f, p, r)
		if via == nil {
			if text {
				why = words(why, p.ID, " is ", rel, " of ", r.ID)
			}
			return addEvent(evs, lookup(r.Prov, "assignee:", p.ID, "|", rel)), why
		}
		if text {
			why = words(why, p.ID, " is ", rel, " of ", via.ID, ", linked from ", r.ID)
		}
		evs = addEvent(evs, via.Prov["body"])
		return addEvent(evs, lookup(via.Prov, "assignee:", p.ID, "|", rel)), why
	}
	kind, _ := strings.CutPrefix(scope, "unit:")
	u, _ := sharedUnit(p, r, kind)
	evs = addEvent(evs, lookup(p.Prov, "unit:", u.Kind, ":", u.ID))
	if IsPrincipalRecordType(r.Type) {
		// A principal's units come from its own events, not from a record body.
		if other := f.Principal(r.ID); other != nil {
			evs = addEvent(evs, lookup(other.Prov, "unit:", u.Kind, ":", u.ID))
		}
	}
	if text {
		if r.ID == u.ID && r.Type == u.Kind {
			why = words(why, r.ID, " is ", p.ID, "'s ", u.Kind)
		} else {
			why = words(why, p.ID, " and ", r.ID, " share ", u.Kind, " ", u.ID)
		}
	}
	return evs, why
}
