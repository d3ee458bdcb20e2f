package projections

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Query bodies and answers of SPEC section 7. The JSON names are the wire format.

// CheckQuery asks whether Principal may do Permission (to Record, if given).
type CheckQuery struct {
	Principal  string            `json:"principal"`
	Permission string            `json:"permission"`
	Record     *events.RecordRef `json:"record,omitempty"`
}

// CheckAnswer is the decision with its explanation.
type CheckAnswer struct {
	Allowed bool                  `json:"allowed"`
	Seq     uint64                `json:"seq"`
	Reason  string                `json:"reason"`
	Grants  []aggregates.GrantUse `json:"grants"`
	Events  []string              `json:"events"`
}

// VisibleQuery lists the records of Type on which Principal is allowed Type.Action.
type VisibleQuery struct {
	Principal string `json:"principal"`
	Type      string `json:"type"`
	Action    string `json:"action"` // default "view"
	Limit     int    `json:"limit"`  // 0: the default
	Cursor    string `json:"cursor"` // the last id of the previous page
}

// VisibleAnswer is one page of ids, ascending.
type VisibleAnswer struct {
	IDs        []string `json:"ids"`
	NextCursor string   `json:"next_cursor"`
	Seq        uint64   `json:"seq"`
}

// PermissionsQuery asks what Principal may do.
type PermissionsQuery struct {
	Principal string `json:"principal"`
}

// PermissionsAnswer: the principal's kind, level, roles, the grants in force (effective grants
// narrowed by kind and access level, with provenance; none when disabled or removed) and the
// denied permissions.
type PermissionsAnswer struct {
	Kind   string                `json:"kind"`
	Level  string                `json:"level"`
	Roles  []string              `json:"roles"`
	Grants []aggregates.GrantUse `json:"grants"`
	Denied []string              `json:"denied"`
	Seq    uint64                `json:"seq"`
}

// PrincipalsQuery asks who is allowed Permission on Record.
type PrincipalsQuery struct {
	Record     events.RecordRef `json:"record"`
	Permission string           `json:"permission"`
}

// RecipientsQuery asks who is notified about Record.
type RecipientsQuery struct {
	Record events.RecordRef `json:"record"`
}

// PrincipalsAnswer lists principal ids, ascending (principals and recipients queries).
type PrincipalsAnswer struct {
	Principals []string `json:"principals"`
	Seq        uint64   `json:"seq"`
}

func invalid(format string, args ...any) error {
	return aggregates.Errorf(aggregates.CodeInvalidArgument, format, args...)
}

// validID checks an id, type or action field: a token (SPEC section 5).
func validID(field, v string) error {
	if !validToken(v) {
		return invalid("%s %q is not 1 to 64 of A-Z a-z 0-9 _ -", field, v)
	}
	return nil
}

// validToken is events.ValidToken without a regular expression: it runs on every query.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validRecord(field string, r events.RecordRef) error {
	if err := validID(field+".type", r.Type); err != nil {
		return err
	}
	return validID(field+".id", r.ID)
}

// validPermission checks a permission's shape; whether the tenant knows it is the evaluator's
// unknown_permission.
func validPermission(p string) error {
	if p == "" {
		return invalid("permission is required")
	}
	if len(p) > 129 {
		return invalid("permission %.40q... is too long", p)
	}
	return nil
}
