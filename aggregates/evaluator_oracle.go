package aggregates

import (
	"maps"
	"slices"
	"strings"

	"github.com/acl-es/acl/events"
)

// Visible is the oracle of the visible query: the ids, ascending, of the active records of type
// typ on which principal is allowed typ+"."+action, by calling Check on every candidate of m.
// Principals are records of types user, employee and client_contact, and units of types
// location, team and area, so those types list them. Never nil. Errors are Check's
// (unknown_permission, not_found).
func Visible(m *Memory, principal, typ, action string) ([]string, error) {
	perm := typ + "." + action
	if _, err := Check(m, principal, perm, nil); err != nil {
		return nil, err
	}
	ids := []string{}
	for _, id := range candidates(m, typ) {
		d, err := Check(m, principal, perm, &events.RecordRef{Type: typ, ID: id})
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// candidates lists, ascending, the ids of the active records of type typ in m.
func candidates(m *Memory, typ string) []string {
	var ids []string
	switch {
	case IsPrincipalRecordType(typ):
		for id, p := range m.Principals {
			if p.Active() && PrincipalRecordType(p.Kind) == typ {
				ids = append(ids, id)
			}
		}
	case IsUnitRecordType(typ):
		for key := range m.T.Units {
			if kind, id, ok := cutUnitKey(key); ok && kind == typ {
				ids = append(ids, id)
			}
		}
	default:
		for k, r := range m.Records {
			if k.Type == typ && r.Active() {
				ids = append(ids, k.ID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func cutUnitKey(key string) (kind, id string, ok bool) { return strings.Cut(key, ":") }

// AllowedPrincipals is the oracle of the principals query: the ids, ascending, of the principals
// of m that Check allows perm on rec. Never nil. Errors: unknown_permission, not_found for a
// missing or removed record.
func AllowedPrincipals(m *Memory, perm string, rec events.RecordRef) ([]string, error) {
	if !m.T.KnowsPermission(perm) {
		return nil, &Error{Code: CodeUnknownPermission, Op: "principals",
			Message: "permission " + perm + " is not in the policy of tenant " + m.T.ID}
	}
	if !m.Record(rec.Type, rec.ID).Active() {
		return nil, &Error{Code: CodeNotFound, Op: "principals", Message: "no record " + rec.Type + " " + rec.ID}
	}
	out := []string{}
	for _, id := range slices.Sorted(maps.Keys(m.Principals)) {
		if !m.Principals[id].Exists {
			continue
		}
		d, err := Check(m, id, perm, &rec)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, id)
		}
	}
	return out, nil
}
