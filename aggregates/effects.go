package aggregates

import "slices"

// Effect is what one change does to one principal's access (SPEC section 8): the grants it
// gains and loses (narrowed, as the permissions query answers them, compared without their
// provenance) and, per record type, the records it may newly view and no longer view. It is
// an entry of a dry run's effects and the body of a change feed message.
type Effect struct {
	Principal string                   `json:"principal"`
	Granted   []GrantUse               `json:"granted"`
	Revoked   []GrantUse               `json:"revoked"`
	Visible   map[string]VisibleChange `json:"visible"`
}

// VisibleChange is the change of the records of one type a principal may view: ids ascending,
// at most MaxEffectIDs of each list, with the full counts; Truncated says a list was cut.
type VisibleChange struct {
	Gained      []string `json:"gained"`
	Lost        []string `json:"lost"`
	GainedCount int      `json:"gained_count"`
	LostCount   int      `json:"lost_count"`
	Truncated   bool     `json:"truncated,omitempty"`
}

// MaxEffectIDs bounds each list of a VisibleChange.
const MaxEffectIDs = 1000

// Change is one message of the change feed (acl.changes.<tenant>.principal.<id>): the effect
// on one principal of the event Event, stored at stream sequence Seq. A check with min_seq Seq
// agrees with it.
type Change struct {
	Seq    uint64 `json:"seq"`
	Event  string `json:"event"`
	Tenant string `json:"tenant"`
	Effect
}

// Empty reports whether the effect changes nothing.
func (e *Effect) Empty() bool {
	return len(e.Granted) == 0 && len(e.Revoked) == 0 && len(e.Visible) == 0
}

// SameGrant compares grants without their provenance: a role revoked and assigned again gives
// the same grant through other events. diff and the effects of a change compare grants so.
func SameGrant(a, b GrantUse) bool {
	return a.Permission == b.Permission && a.Scope == b.Scope && a.Source == b.Source &&
		a.NarrowedFrom == b.NarrowedFrom && a.Unscoped == b.Unscoped
}

// GrantsMinus lists the grants of a that b lacks (SameGrant), in a's order; never nil.
func GrantsMinus(a, b []GrantUse) []GrantUse {
	out := []GrantUse{}
	for _, g := range a {
		if !slices.ContainsFunc(b, func(h GrantUse) bool { return SameGrant(g, h) }) {
			out = append(out, g)
		}
	}
	return out
}
