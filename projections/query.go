package projections

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Query bodies and answers of SPEC section 7 live in aggregates, where the Go client (package
// commands) shares them; these names keep the engine's code as it was.
type (
	CheckQuery        = aggregates.CheckQuery
	CheckAnswer       = aggregates.CheckAnswer
	VisibleQuery      = aggregates.VisibleQuery
	VisibleAnswer     = aggregates.VisibleAnswer
	PermissionsQuery  = aggregates.PermissionsQuery
	PermissionsAnswer = aggregates.PermissionsAnswer
	PrincipalsQuery   = aggregates.PrincipalsQuery
	RecipientsQuery   = aggregates.RecipientsQuery
	PrincipalsAnswer  = aggregates.PrincipalsAnswer
)

func invalid(format string, args ...any) error {
	return aggregates.Errorf(aggregates.CodeInvalidArgument, format, args...)
}

// validID checks an id, type or action field: a token (SPEC section 5).
func validID(field, v string) error {
	if !events.ValidToken(v) {
		return invalid("%s %q is not 1 to 64 of A-Z a-z 0-9 _ -", field, v)
	}
	return nil
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
