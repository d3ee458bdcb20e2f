package aggregates

import (
	"errors"
	"time"

	"github.com/acl-es/acl/events"
)

// Write is what a decision appends to one aggregate: its events, expecting the aggregate to be
// at sequence Expected (the Seq of the state the decision read; 0 when it does not exist yet).
// A Write without events means "nothing to change": the command is answered with Expected.
type Write struct {
	Aggregate events.AggregateRef
	Expected  uint64
	Events    []events.Data
}

// Decide is the pure decision of SPEC section 5: it checks cmd against the facts and returns the
// writes that carry it out, or an *Error. It does no I/O and reads no clock (now is the caller's
// time, for guards that need it). The guards run in the SPEC's order: the body
// (invalid_argument), the tenant's existence (not_found: names are the tenant's, so an unknown
// tenant answers before its names), names (unknown_role, unknown_permission), the existence of
// what the command is about (not_found), the actor (forbidden), then the domain.
//
// When a command writes two aggregates, the writes come in the order they are appended (the
// last one is the command's target, except CreateTenant whose principal comes last).
func Decide(f Facts, cmd Command, now time.Time) ([]Write, error) {
	_ = now // no guard depends on time yet; events take their time from the caller's Meta
	if err := Validate(cmd); err != nil {
		return nil, withOp(err, cmd)
	}
	ws, err := decide(f, cmd)
	if err != nil {
		return nil, withOp(err, cmd)
	}
	return ws, nil
}

func decide(f Facts, cmd Command) ([]Write, error) {
	switch c := cmd.(type) {
	case *CreateTenant:
		return decideCreateTenant(f, c)
	case *SetSubscription:
		return decideSetSubscription(f, c)
	case *DefineUnit:
		return decideDefineUnit(f, c)
	case *DefineRole:
		return decideDefineRole(f, c)
	case *DeleteRole:
		return decideDeleteRole(f, c)
	case *GrantRolePermission:
		return decideRolePermission(f, c.Base(), c.Role, events.Grant{Permission: c.Permission, Scope: c.Scope}, true)
	case *RevokeRolePermission:
		return decideRolePermission(f, c.Base(), c.Role, events.Grant{Permission: c.Permission, Scope: c.Scope}, false)
	case *SetPolicy:
		return decideSetPolicy(f, c)
	case *RegisterPrincipal:
		return decideRegisterPrincipal(f, c)
	case *SetEmail:
		return decideSetEmail(f, c)
	case *AssignRole:
		return decideAssignRole(f, c)
	case *RevokeRole:
		return decideRevokeRole(f, c)
	case *SetAccessLevel:
		return decideSetAccessLevel(f, c)
	case *GrantPermission:
		return decideGrantPermission(f, c)
	case *DenyPermission:
		return decideDenyPermission(f, c)
	case *ClearPermission:
		return decideClearPermission(f, c)
	case *JoinUnit:
		return decideUnitMembership(f, c.Base(), c.Principal, c.Unit, true)
	case *LeaveUnit:
		return decideUnitMembership(f, c.Base(), c.Principal, c.Unit, false)
	case *RemovePrincipal:
		return decideRemovePrincipal(f, c)
	case *RegisterRecord:
		return decideRegisterRecord(f, c)
	case *UpdateRecord:
		return decideUpdateRecord(f, c)
	case *AssignRecord:
		return decideAssignment(f, c.Base(), c.Type, c.ID, events.Assignee{Principal: c.Principal, Relation: c.Relation}, true)
	case *UnassignRecord:
		return decideAssignment(f, c.Base(), c.Type, c.ID, events.Assignee{Principal: c.Principal, Relation: c.Relation}, false)
	case *RemoveRecord:
		return decideRemoveRecord(f, c)
	}
	return nil, Errorf(CodeInvalidArgument, "unknown command %T", cmd)
}

// withOp names the command in an *Error that does not name one yet.
func withOp(err error, cmd Command) error {
	var e *Error
	if errors.As(err, &e) && e.Op == "" {
		e.Op = cmd.Name()
	}
	return err
}

// write is one aggregate's write on top of the state seq.
func write(ref events.AggregateRef, seq uint64, evs ...events.Data) Write {
	return Write{Aggregate: ref, Expected: seq, Events: evs}
}

// unchanged is the answer of a command that changes nothing: no events, so nothing is appended
// and the command answers with the aggregate's sequence.
func unchanged(ref events.AggregateRef, seq uint64) []Write {
	return []Write{{Aggregate: ref, Expected: seq}}
}

// seqOf is the sequence of an aggregate's state, 0 when it was never written.
func principalSeq(p *Principal) uint64 {
	if p == nil {
		return 0
	}
	return p.Seq
}

func recordSeq(r *Record) uint64 {
	if r == nil {
		return 0
	}
	return r.Seq
}

// existingTenant is the first existence guard of every command but CreateTenant.
func existingTenant(f Facts, b *CommandBase) (*Tenant, error) {
	t := f.Tenant()
	if t == nil || !t.Exists {
		return nil, Errorf(CodeNotFound, "tenant %s does not exist; the operator creates it with CreateTenant", b.Tenant)
	}
	return t, nil
}

// activePrincipal is the existence guard of a principal a command is about.
func activePrincipal(f Facts, t *Tenant, id string) (*Principal, error) {
	p := f.Principal(id)
	switch {
	case p == nil || !p.Exists:
		return nil, Errorf(CodeNotFound, "principal %s is not registered in tenant %s", id, t.ID)
	case p.Removed:
		return nil, Errorf(CodeNotFound, "principal %s of tenant %s was removed", id, t.ID)
	}
	return p, nil
}

// definedUnits is the guard "a unit must be defined before anyone or anything joins it".
func definedUnits(t *Tenant, units []events.UnitRef) error {
	for _, u := range units {
		if !t.HasUnit(u) {
			return Errorf(CodeNotFound, "%s %s is not defined in tenant %s; define it with DefineUnit first", u.Kind, u.ID, t.ID)
		}
	}
	return nil
}
