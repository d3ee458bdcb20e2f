package aggregates

import "github.com/acl-es/acl/events"

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
// record). Errors: unknown_permission, not_found (principal or record).
func Check(f Facts, principal, perm string, rec *events.RecordRef) (Decision, error) {
	panic("not implemented")
}

// EffectiveGrants returns the grants of p's roles (minus roles whose feature the tenant lacks)
// plus its direct grants, minus denied permissions, before narrowing, sorted.
func EffectiveGrants(t *Tenant, p *Principal) []GrantUse {
	panic("not implemented")
}

// NarrowedGrants returns p's effective grants of perm after narrowing by kind and access level
// (Scope narrowed, NarrowedFrom the original). Empty for a disabled or removed principal.
func NarrowedGrants(t *Tenant, p *Principal, perm string) []GrantUse {
	panic("not implemented")
}

// Holds reports whether the actor holds perm at scope for the escalation guard of SPEC section 5:
// one of its effective grants (before narrowing) has perm at scope all or at scope.
func Holds(t *Tenant, p *Principal, perm, scope string) bool {
	panic("not implemented")
}

// Visible is the oracle of the visible query: the ids, ascending, of the records of type typ on
// which principal is allowed typ+"."+action, by brute force over m.
func Visible(m *Memory, principal, typ, action string) ([]string, error) {
	panic("not implemented")
}

// AllowedPrincipals is the oracle of the principals query: ascending ids of the principals
// allowed perm on rec, by brute force over m.
func AllowedPrincipals(m *Memory, perm string, rec events.RecordRef) ([]string, error) {
	panic("not implemented")
}
