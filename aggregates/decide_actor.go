package aggregates

import (
	"errors"

	"github.com/acl-es/acl/events"
)

// actor is who issues a command: the operator (system) or an active principal of the tenant.
type actor struct {
	id     string
	system bool
	p      *Principal
}

// actorOf is the first actor guard: system, or a principal of the tenant that is not removed.
// A disabled principal passes here and is refused by the checks below (it is allowed nothing).
func actorOf(f Facts, t *Tenant, id string) (actor, error) {
	if id == SystemActor {
		return actor{id: id, system: true}, nil
	}
	p := f.Principal(id)
	if !p.Active() {
		return actor{}, Errorf(CodeForbidden, "actor %s is not a principal of tenant %s", id, t.ID)
	}
	return actor{id: id, p: p}, nil
}

// systemOnly is the guard of CreateTenant and SetSubscription.
func systemOnly(b *CommandBase, what string) error {
	if b.Actor != SystemActor {
		return Errorf(CodeForbidden, "only the operator (actor system) may %s; %s may not", what, b.Actor)
	}
	return nil
}

// allowed is the guard of record and principal commands: the actor must be allowed perm on the
// record ref as f answers it (the caller overlays a record that does not exist yet). Facts that
// cannot answer a record (a permission the policy does not name) refuse: nobody holds it.
func (a actor) allowed(f Facts, perm string, ref events.RecordRef) error {
	if a.system {
		return nil
	}
	ok, err := Allowed(f, a.id, perm, &ref)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Code == CodeUnknownPermission || e.Code == CodeNotFound) {
			return &Error{Code: CodeForbidden, Message: a.id + " may not use " + perm + " on " + ref.Type + " " + ref.ID + ": " + e.Message, Err: err}
		}
		return err
	}
	if !ok {
		// The refusal says why: Check again, explaining (the same facts, the same answer).
		d, err := Check(f, a.id, perm, &ref)
		if err != nil {
			return err
		}
		return Errorf(CodeForbidden, "%s is not allowed %s on %s %s: %s", a.id, perm, ref.Type, ref.ID, d.Reason)
	}
	return nil
}

// managesTenant is the guard of tenant commands other than CreateTenant and SetSubscription:
// user.manage_access at scope all after narrowing by the actor's kind and level.
func (a actor) managesTenant(t *Tenant) error {
	if a.system {
		return nil
	}
	for _, g := range NarrowedGrants(t, a.p, ManageAccess) {
		if g.Scope == ScopeAll {
			return nil
		}
	}
	return Errorf(CodeForbidden, "%s may not change the settings of tenant %s: that needs %s at scope all (after narrowing by access level %s)",
		a.id, t.ID, ManageAccess, a.p.Level)
}

// handsOut is the escalation guard: the actor must hold every grant it hands out (Holds: one of
// its effective grants, before narrowing, has the permission at scope all or at that scope).
func (a actor) handsOut(t *Tenant, what string, grants []events.Grant) error {
	if a.system {
		return nil
	}
	for _, g := range grants {
		if !Holds(t, a.p, g.Permission, g.Scope) {
			return Errorf(CodeForbidden, "%s may not hand out %s: it does not hold %s at scope %s itself",
				a.id, what, g.Permission, g.Scope)
		}
	}
	return nil
}

// setsLevel is the escalation guard of access levels: no level wider than the actor's own.
func (a actor) setsLevel(level string) error {
	if a.system || LevelRank(level) <= LevelRank(a.p.Level) {
		return nil
	}
	return Errorf(CodeForbidden, "%s may not set access level %s: it is wider than its own level %s", a.id, level, a.p.Level)
}

// roleGrants is what holding a role gives, for the escalation guard: the administrator role
// holds every permission of the policy at scope all.
func roleGrants(t *Tenant, r *Role) []events.Grant {
	if r.Def.Role != t.AdminRole {
		return r.Def.Grants
	}
	gs := make([]events.Grant, 0, len(t.Policy.Permissions))
	for _, p := range t.Policy.Permissions {
		gs = append(gs, events.Grant{Permission: p, Scope: ScopeAll})
	}
	return gs
}

// overlay answers one record (and, for a principal, the principal) that does not exist yet, or
// not in that form, so that Check can judge a command on the record as it will be.
type overlay struct {
	Facts
	rec *Record
	p   *Principal
}

func (o overlay) Principal(id string) *Principal {
	if o.p != nil && o.p.ID == id {
		return o.p
	}
	return o.Facts.Principal(id)
}

func (o overlay) Record(typ, id string) *Record {
	switch {
	case o.rec != nil && o.rec.Type == typ && o.rec.ID == id:
		return o.rec
	case o.p != nil && o.p.ID == id && PrincipalRecordType(o.p.Kind) == typ:
		return PrincipalAsRecord(o.p)
	}
	return o.Facts.Record(typ, id)
}

// principalRef is the record a principal is.
func principalRef(p *Principal) events.RecordRef {
	return events.RecordRef{Type: PrincipalRecordType(p.Kind), ID: p.ID}
}

// editPermission is the permission record commands need.
func editPermission(typ string) string { return typ + ".edit" }
