package aggregates

import (
	"strings"

	"github.com/acl-es/acl/events"
)

// GrantUse is one effective grant of a principal with its provenance (SPEC section 7).
type GrantUse struct {
	Permission string `json:"permission"`
	Scope      string `json:"scope"`
	// Source is "role:<id>" or "direct".
	Source string `json:"source"`
	// NarrowedFrom is the scope before narrowing by kind and access level, "" if unchanged.
	NarrowedFrom string `json:"narrowed_from,omitempty"`
	// Unscoped is set when the policy's unscoped list kept the scope at full_location (TO-3).
	Unscoped bool `json:"unscoped,omitempty"`
	// Events are the ids of the events behind the grant (role assignment, role grant, direct
	// grant, access level).
	Events []string `json:"events"`
}

// Decision is the evaluator's answer with its explanation.
type Decision struct {
	Allowed bool       `json:"allowed"`
	Reason  string     `json:"reason"`
	Grants  []GrantUse `json:"grants"`
	// Events are the ids of every event behind the facts used (grant, assignment, link, ...).
	Events []string `json:"events"`
}

// Check is the decision rule of SPEC section 2: may principal do perm to rec (nil: without a
// record)? Errors, in this order: perm not in the tenant's policy (unknown_permission); the
// principal never registered (not_found); rec given but missing or removed (not_found).
//
// Then, the first that applies answers:
//  1. a removed principal, or one whose access level is disabled, is allowed nothing;
//  2. a directly denied permission is not allowed (a denial beats every grant and implication);
//  3. a permission <type>.<action> asked on a record of another type is not allowed, except
//     user.manage_access, which applies to the records of principals of every kind;
//  4. allowed when some effective grant of perm, narrowed (NarrowScope), covers the record
//     (Covers); without a record, when p holds perm at any scope after narrowing;
//  5. on a client record C, allowed when an implication rule {permission, client, perm} of the
//     policy holds: p is allowed (by rule 4 only: implications do not chain) the rule's
//     permission on some active record of that permission's type whose client is C; the first
//     such record in ascending id order is the one explained.
//
// The Decision's Grants are every narrowed grant that allowed (sorted like EffectiveGrants; for
// an implication, those of the implying permission), [] when not allowed. Reason is one sentence
// that explains the first of them. Events are the ids, ascending and unique, of the events
// behind every fact used: the grants' provenance, the record's body, the assignment, the linked
// record's body and assignment, the principal's unit or client; when not allowed, those of the
// fact that refused (removal, level, denial, the grants that do not cover, the record's body).
func Check(f Facts, principal, perm string, rec *events.RecordRef) (Decision, error) {
	return check(f, principal, perm, rec, true)
}

// Allowed is Check's Allowed and error, for callers that need nothing else (the commands'
// guards, the change feed): no decision's grants, reason and events are built, for an allowed
// check nor a refused one (BenchmarkAllowed, one of each: no allocation, against Check's 6 and
// 592 B; 2 and 192 B while a refusal still built its reason).
func Allowed(f Facts, principal, perm string, rec *events.RecordRef) (bool, error) {
	d, err := check(f, principal, perm, rec, false)
	return d.Allowed, err
}

// check is Check; without explain, a permission a grant covers answers Allowed alone.
func check(f Facts, principal, perm string, rec *events.RecordRef, explain bool) (Decision, error) {
	t := f.Tenant()
	if !t.KnowsPermission(perm) {
		return Decision{}, &Error{Code: CodeUnknownPermission, Op: "check",
			Message: "permission " + perm + " is not in the policy of tenant " + t.ID}
	}
	p := f.Principal(principal)
	if p == nil || !p.Exists {
		return Decision{}, &Error{Code: CodeNotFound, Op: "check", Message: "no principal " + principal}
	}
	var r *Record
	if rec != nil {
		if r = f.Record(rec.Type, rec.ID); !r.Active() {
			return Decision{}, &Error{Code: CodeNotFound, Op: "check", Message: "no record " + rec.Type + " " + rec.ID}
		}
	}
	switch {
	case p.Removed:
		return refuse(p.ID+" was removed, so nothing is allowed", p.Prov["removed"]), nil
	case !levelAllows(p.Level):
		return refuse(p.ID+"'s access level is "+p.Level+", so nothing is allowed", p.Prov["level"]), nil
	case contains(p.Denied, perm):
		return refuse(p.ID+" is denied "+perm+" directly; a denial beats every grant", p.Prov["deny:"+perm]), nil
	case r != nil && !AppliesTo(perm, r.Type):
		return refuse(perm+" applies only to records of type "+PermissionType(perm)+", and "+r.ID+" is a "+r.Type,
			r.Prov["body"]), nil
	}
	// The explanation is built after the decision, for the answer given only.
	var buf [8]match
	hs := held(t, p, perm, buf[:0])
	var a assignMemo
	if cover(f, p, r, hs, &a) {
		if !explain {
			return Decision{Allowed: true}, nil
		}
		return allow(f, t, p, r, hs, &a), nil
	}
	if r != nil {
		if d, ok := implied(f, t, p, perm, r); ok {
			return d, nil
		}
	}
	if !explain {
		return Decision{}, nil // refused: the reason and its events are Check's
	}
	return notCovered(t, p, perm, r, hs), nil
}

// PermissionType is the record type a permission <type>.<action> is about.
func PermissionType(perm string) string {
	typ, _, _ := strings.Cut(perm, ".")
	return typ
}

// AppliesTo reports whether perm may be asked on a record of type typ: its own type, and for
// user.manage_access the records of principals of every kind.
func AppliesTo(perm, typ string) bool {
	return PermissionType(perm) == typ || (perm == ManageAccess && IsPrincipalRecordType(typ))
}

func refuse(reason string, evs ...string) Decision {
	d := Decision{Reason: reason, Grants: []GrantUse{}, Events: []string{}}
	for _, e := range evs {
		d.Events = addEvent(d.Events, e)
	}
	return d
}
