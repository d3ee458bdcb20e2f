package aggregates

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/acl-es/acl/events"
)

// MaxEmailLen is the longest email accepted (RFC 5321's path limit).
const MaxEmailLen = 254

// permissionRE is the form of a permission name: <resource>.<action>, lower snake case.
var permissionRE = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)

// Validate is the body stage of Decide: everything that can be checked without facts. Every
// failure is an *Error with code invalid_argument that names the field.
func Validate(cmd Command) error {
	b := cmd.Base()
	if err := validateBase(b); err != nil {
		return err
	}
	switch c := cmd.(type) {
	case *CreateTenant:
		if !slices.Contains(PresetIDs, c.Preset) {
			return invalid("preset %q is unknown; use one of %s", c.Preset, strings.Join(PresetIDs, ", "))
		}
		return validatePrincipalBody(&c.Admin, "admin.")
	case *SetSubscription:
		return validateSubscription(c)
	case *DefineUnit:
		return validateUnit(c.Unit, "unit")
	case *DefineRole:
		return validateRoleDef(c)
	case *DeleteRole:
		return validateToken(c.Role, "role")
	case *GrantRolePermission:
		return validateRoleGrant(c.Role, c.Permission, c.Scope)
	case *RevokeRolePermission:
		return validateRoleGrant(c.Role, c.Permission, c.Scope)
	case *SetPolicy:
		if c.Policy == nil {
			return invalid("policy is required")
		}
		return validatePolicy(c.Policy)
	case *RegisterPrincipal:
		return validatePrincipalBody(c, "")
	case *SetEmail:
		if c.Email == nil {
			return firstErr(validatePrincipalID(c.Principal, "principal"), invalid("email is required (\"\" clears it)"))
		}
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateEmail(*c.Email, "email", true))
	case *AssignRole:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateToken(c.Role, "role"))
	case *RevokeRole:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateToken(c.Role, "role"))
	case *SetAccessLevel:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateEnum(c.Level, "level", Levels))
	case *GrantPermission:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validatePermissionField(c.Permission, "permission"),
			validateEnum(c.Scope, "scope", Scopes))
	case *DenyPermission:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validatePermissionField(c.Permission, "permission"))
	case *ClearPermission:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validatePermissionField(c.Permission, "permission"))
	case *JoinUnit:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateUnit(c.Unit, "unit"))
	case *LeaveUnit:
		return firstErr(validatePrincipalID(c.Principal, "principal"), validateUnit(c.Unit, "unit"))
	case *RemovePrincipal:
		return validatePrincipalID(c.Principal, "principal")
	case *RegisterRecord:
		return validateRecordBody(&c.RecordBody)
	case *UpdateRecord:
		return validateRecordBody(&c.RecordBody)
	case *AssignRecord:
		return validateAssignment(c.Type, c.ID, c.Principal, c.Relation)
	case *UnassignRecord:
		return validateAssignment(c.Type, c.ID, c.Principal, c.Relation)
	case *RemoveRecord:
		return validateRecordRef(c.Type, c.ID, "")
	}
	return invalid("unknown command %T", cmd)
}

func validateBase(b *CommandBase) error {
	if !events.ValidToken(b.Tenant) {
		return invalid("tenant %q must be 1 to 64 of A-Z a-z 0-9 _ -", b.Tenant)
	}
	if b.Actor != SystemActor && !events.ValidToken(b.Actor) {
		return invalid("actor %q must be system or a principal id (1 to 64 of A-Z a-z 0-9 _ -)", b.Actor)
	}
	return nil
}

func validateSubscription(c *SetSubscription) error {
	if c.Features == nil {
		return invalid("features is required (the whole subscription is replaced; [] for none)")
	}
	if c.Seats == nil {
		return invalid("seats is required (the whole subscription is replaced; {} for unlimited)")
	}
	for _, f := range *c.Features {
		if err := validateToken(f, "feature"); err != nil {
			return err
		}
	}
	for _, level := range slices.Sorted(maps.Keys(c.Seats)) {
		if level == LevelDisabled || LevelRank(level) < 0 {
			return invalid("seats level %q: seats are limited per level full, full_location or limited", level)
		}
		if c.Seats[level] < 0 {
			return invalid("seats.%s is %d; a limit is 0 or more", level, c.Seats[level])
		}
	}
	return nil
}

func validateRoleDef(c *DefineRole) error {
	if err := validateToken(c.Role, "role"); err != nil {
		return err
	}
	for i, g := range c.Grants {
		if err := firstErr(validatePermissionField(g.Permission, "grants[].permission"),
			validateEnum(g.Scope, "grants[].scope", Scopes)); err != nil {
			return prefixMessage(err, fmt.Sprintf("grant %d of role %s: ", i, c.Role))
		}
	}
	if c.RequiresFeature != "" {
		if err := validateToken(c.RequiresFeature, "requires_feature"); err != nil {
			return err
		}
	}
	for _, k := range c.PrincipalKinds {
		if err := validateEnum(k, "principal_kinds[]", Kinds); err != nil {
			return err
		}
	}
	return nil
}

func validateRoleGrant(role, perm, scope string) error {
	return firstErr(validateToken(role, "role"), validatePermissionField(perm, "permission"),
		validateEnum(scope, "scope", Scopes))
}

// validatePolicy checks the form of a policy; whether the names it uses are its own is the
// names stage (unknown_permission).
func validatePolicy(p *events.Policy) error {
	for _, perm := range p.Permissions {
		if !permissionRE.MatchString(perm) {
			return invalid("policy permission %q must be <resource>.<action> in lower snake case", perm)
		}
	}
	for _, l := range p.Limited {
		if len(l.Kinds) == 0 {
			return invalid("policy limited exception %s names no principal kind", l.Permission)
		}
		for _, k := range l.Kinds {
			if err := validateEnum(k, "policy.limited[].kinds[]", Kinds); err != nil {
				return err
			}
		}
	}
	for _, l := range p.Links {
		if err := firstErr(validateToken(l.Type, "policy.links[].type"), validateToken(l.Via, "policy.links[].via")); err != nil {
			return err
		}
		for _, k := range l.Kinds {
			if err := validateEnum(k, "policy.links[].kinds[]", Kinds); err != nil {
				return err
			}
		}
	}
	for _, im := range p.Implies {
		if im.Field != "client" {
			return invalid("policy implication of %s has field %q; only \"client\" is supported", im.Permission, im.Field)
		}
	}
	return nil
}

// validatePrincipalBody checks a RegisterPrincipal body (also CreateTenant's admin, whose field
// names get the prefix "admin.").
func validatePrincipalBody(c *RegisterPrincipal, prefix string) error {
	if err := validatePrincipalID(c.Principal, prefix+"principal"); err != nil {
		return err
	}
	if err := validateEnum(c.Kind, prefix+"kind", Kinds); err != nil {
		return err
	}
	if err := validateEmail(c.Email, prefix+"email", true); err != nil {
		return err
	}
	switch {
	case c.Client != "":
		if err := validateToken(c.Client, prefix+"client"); err != nil {
			return err
		}
	case c.Kind == KindClientContact:
		return invalid("%sclient is required for a client contact: it is the client whose data they see", prefix)
	}
	for _, u := range c.Units {
		if err := validateUnit(u, prefix+"units[]"); err != nil {
			return err
		}
	}
	return nil
}

func validateRecordBody(b *events.RecordBody) error {
	if err := validateRecordRef(b.Type, b.ID, ""); err != nil {
		return err
	}
	if b.Client != "" {
		if err := validateToken(b.Client, "client"); err != nil {
			return err
		}
	}
	for _, u := range b.Units {
		if err := validateUnit(u, "units[]"); err != nil {
			return err
		}
	}
	if b.Owner != "" {
		if err := validatePrincipalID(b.Owner, "owner"); err != nil {
			return err
		}
	}
	for _, a := range b.Assignees {
		if err := validatePrincipalID(a.Principal, "assignees[].principal"); err != nil {
			return err
		}
		if a.Relation != "" {
			if err := validateToken(a.Relation, "assignees[].relation"); err != nil {
				return err
			}
		}
	}
	for _, l := range b.Links {
		if err := firstErr(validateToken(l.Type, "links[].type"), validateToken(l.ID, "links[].id")); err != nil {
			return err
		}
	}
	return nil
}

func validateAssignment(typ, id, principal, relation string) error {
	if err := firstErr(validateRecordRef(typ, id, ""), validatePrincipalID(principal, "principal")); err != nil {
		return err
	}
	if relation != "" {
		return validateToken(relation, "relation")
	}
	return nil
}

// validateRecordRef checks a record's type and id, and refuses the types that are records
// through their own commands (principals and units).
func validateRecordRef(typ, id, prefix string) error {
	if err := firstErr(validateToken(typ, prefix+"type"), validateToken(id, prefix+"id")); err != nil {
		return err
	}
	switch {
	case IsPrincipalRecordType(typ):
		return invalid("records of type %s are principals: use the principal commands (RegisterPrincipal, JoinUnit, ...)", typ)
	case IsUnitRecordType(typ):
		return invalid("records of type %s are units: use DefineUnit", typ)
	}
	return nil
}

func validateUnit(u events.UnitRef, field string) error {
	return firstErr(validateEnum(u.Kind, field+".kind", UnitKinds), validateToken(u.ID, field+".id"))
}

func validatePrincipalID(id, field string) error {
	if err := validateToken(id, field); err != nil {
		return err
	}
	if id == SystemActor {
		return invalid("%s %q: system is the operator's actor and cannot be a principal", field, id)
	}
	return nil
}

// validatePermissionField checks that a permission is given; whether the tenant knows it is the
// names stage, so that a typo answers unknown_permission.
func validatePermissionField(perm, field string) error {
	if perm == "" {
		return invalid("%s is required", field)
	}
	if len(perm) > 200 || strings.ContainsAny(perm, " \t\r\n") {
		return invalid("%s %.40q is not a permission name (<resource>.<action>)", field, perm)
	}
	return nil
}

// validateEmail: at most 254 characters, exactly one @ with something on both sides, no space.
func validateEmail(email, field string, optional bool) error {
	if email == "" {
		if optional {
			return nil
		}
		return invalid("%s is required", field)
	}
	local, domain, _ := strings.Cut(email, "@")
	switch {
	case len(email) > MaxEmailLen:
		return invalid("%s is %d characters long; at most %d are allowed", field, len(email), MaxEmailLen)
	case strings.Count(email, "@") != 1 || local == "" || domain == "":
		return invalid("%s %q must have exactly one @ between a name and a domain", field, email)
	case strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return invalid("%s %q contains a space or control character", field, email)
	}
	return nil
}

func validateToken(s, field string) error {
	if !events.ValidToken(s) {
		if s == "" {
			return invalid("%s is required", field)
		}
		return invalid("%s %.70q must be 1 to 64 of A-Z a-z 0-9 _ -", field, s)
	}
	return nil
}

func validateEnum(s, field string, allowed []string) error {
	if !slices.Contains(allowed, s) {
		if s == "" {
			return invalid("%s is required: one of %s", field, strings.Join(allowed, ", "))
		}
		return invalid("%s %.40q is not one of %s", field, s, strings.Join(allowed, ", "))
	}
	return nil
}

// prefixMessage puts prefix before the message of an *Error, so it says where in a list it is.
func prefixMessage(err error, prefix string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Message = prefix + e.Message
	}
	return err
}

func invalid(format string, args ...any) *Error { return Errorf(CodeInvalidArgument, format, args...) }

// firstErr returns the first non-nil error. The arguments are all evaluated; they are cheap.
func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
