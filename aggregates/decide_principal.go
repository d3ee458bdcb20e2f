package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// The principal aggregate keeps the invariants that involve one principal only: exclusive roles
// (RP-10), an email for every level above disabled (TO-6), roles only for the kinds they allow.
// Seat limits (TO-7) span the tenant: SetAccessLevel and RemovePrincipal also write the tenant's
// SeatChanged, in one atomic batch.

// registered is the event of a new principal, with its units sorted and without duplicates.
func registered(c *RegisterPrincipal) events.PrincipalRegisteredV1 {
	units := sortedUnits(c.Units)
	if units == nil {
		units = []events.UnitRef{}
	}
	return events.PrincipalRegisteredV1{Principal: c.Principal, Kind: c.Kind, Email: c.Email, Client: c.Client, Units: units}
}

func decideRegisterPrincipal(f Facts, c *RegisterPrincipal) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if err := definedUnits(t, c.Units); err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	// The actor must be allowed user.manage_access on the principal as it will be.
	ev := registered(c)
	next := NewPrincipal(c.Principal)
	next.Apply(events.Envelope{}, ev)
	if err := a.allowed(overlay{Facts: f, p: next}, ManageAccess, principalRef(next)); err != nil {
		return nil, err
	}
	old := f.Principal(c.Principal)
	if old != nil && old.Exists {
		if old.Removed {
			return nil, Errorf(CodeAlreadyExists, "principal %s of tenant %s was removed, and ids are never reused; choose another id", c.Principal, t.ID)
		}
		return nil, Errorf(CodeAlreadyExists, "principal %s already exists in tenant %s", c.Principal, t.ID)
	}
	return []Write{write(events.PrincipalRef(c.Principal), principalSeq(old), ev)}, nil
}

// targetPrincipal runs the tenant, principal and actor guards shared by the principal commands
// (names, when a command has some, are checked by the caller in between via names).
func targetPrincipal(f Facts, b *CommandBase, id string, names func(*Tenant) error) (*Tenant, *Principal, actor, error) {
	t, err := existingTenant(f, b)
	if err != nil {
		return nil, nil, actor{}, err
	}
	if names != nil {
		if err := names(t); err != nil {
			return nil, nil, actor{}, err
		}
	}
	p, err := activePrincipal(f, t, id)
	if err != nil {
		return nil, nil, actor{}, err
	}
	a, err := actorOf(f, t, b.Actor)
	if err != nil {
		return nil, nil, actor{}, err
	}
	if err := a.allowed(f, ManageAccess, principalRef(p)); err != nil {
		return nil, nil, actor{}, err
	}
	return t, p, a, nil
}

func decideSetEmail(f Facts, c *SetEmail) ([]Write, error) {
	_, p, _, err := targetPrincipal(f, &c.CommandBase, c.Principal, nil)
	if err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	email := *c.Email
	switch {
	case email == "" && p.Level != LevelDisabled:
		return nil, Errorf(CodeEmailRequired, "%s is at access level %s, which requires an email; set the level to disabled before clearing it", p.ID, p.Level)
	case email == p.Email:
		return unchanged(ref, p.Seq), nil
	}
	return []Write{write(ref, p.Seq, events.EmailSetV1{Email: email})}, nil
}

func decideAssignRole(f Facts, c *AssignRole) ([]Write, error) {
	var role *Role
	t, p, a, err := targetPrincipal(f, &c.CommandBase, c.Principal, func(t *Tenant) error {
		role = t.Roles[c.Role]
		if role == nil {
			return Errorf(CodeUnknownRole, "role %s does not exist in tenant %s", c.Role, t.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := a.handsOut(t, "role "+c.Role, roleGrants(t, role)); err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if slices.Contains(p.Roles, c.Role) {
		return unchanged(ref, p.Seq), nil
	}
	if err := exclusiveGuard(t, p, role); err != nil {
		return nil, err
	}
	if f := role.Def.RequiresFeature; f != "" && !t.HasFeature(f) {
		return nil, Errorf(CodeFeatureRequired, "role %s requires feature %s, which the subscription of tenant %s lacks", c.Role, f, t.ID)
	}
	if err := kindFits(role.Def, p.ID, p.Kind); err != nil {
		return nil, err
	}
	return []Write{write(ref, p.Seq, events.RoleAssignedV1{Role: c.Role})}, nil
}

// exclusiveGuard is RP-10: an exclusive role cannot be combined with any other role, in either
// order. Roles that no longer exist count as held (they still are in the principal's list).
func exclusiveGuard(t *Tenant, p *Principal, role *Role) error {
	if role.Def.Exclusive && len(p.Roles) > 0 {
		return Errorf(CodeExclusiveRole, "role %s is exclusive and %s already holds %s; revoke it first", role.Def.Role, p.ID, p.Roles[0])
	}
	for _, held := range p.Roles {
		if r := t.Roles[held]; r != nil && r.Def.Exclusive {
			return Errorf(CodeExclusiveRole, "%s holds the exclusive role %s, which cannot be combined with %s; revoke it first", p.ID, held, role.Def.Role)
		}
	}
	return nil
}

// kindFits is the guard principal_kind_mismatch: a role for some kinds only (none listed: all).
func kindFits(def events.RoleDef, principal, kind string) error {
	if len(def.PrincipalKinds) > 0 && !slices.Contains(def.PrincipalKinds, kind) {
		return Errorf(CodePrincipalKindMismatch, "role %s is for principals of kind %v, and %s is a %s", def.Role, def.PrincipalKinds, principal, kind)
	}
	return nil
}

func decideRevokeRole(f Facts, c *RevokeRole) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	p, err := activePrincipal(f, t, c.Principal)
	if err != nil {
		return nil, err
	}
	held := slices.Contains(p.Roles, c.Role)
	if _, ok := t.Roles[c.Role]; !ok && !held {
		return nil, Errorf(CodeNotFound, "role %s does not exist in tenant %s", c.Role, t.ID)
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.allowed(f, ManageAccess, principalRef(p)); err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if !held {
		return unchanged(ref, p.Seq), nil
	}
	return []Write{write(ref, p.Seq, events.RoleRevokedV1{Role: c.Role})}, nil
}

// decideSetAccessLevel writes the principal's AccessLevelSet and the tenant's SeatChanged, each
// expecting the sequence it was decided on, so that two changes racing for the last seat of a
// level cannot both be stored (TO-7).
func decideSetAccessLevel(f Facts, c *SetAccessLevel) ([]Write, error) {
	t, p, a, err := targetPrincipal(f, &c.CommandBase, c.Principal, nil)
	if err != nil {
		return nil, err
	}
	if err := a.setsLevel(c.Level); err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if c.Level == p.Level {
		return unchanged(ref, p.Seq), nil
	}
	if c.Level != LevelDisabled && p.Email == "" {
		return nil, Errorf(CodeEmailRequired, "access level %s requires an email, and %s has none; set one with SetEmail first", c.Level, p.ID)
	}
	if max, limited := t.Seats[c.Level]; limited && c.Level != LevelDisabled {
		if used := t.SeatsUsed(c.Level); used >= max {
			return nil, Errorf(CodeSeatLimitReached, "tenant %s allows %d %s seats and all %d are taken", t.ID, max, c.Level, used)
		}
	}
	return []Write{
		write(ref, p.Seq, events.AccessLevelSetV1{Level: c.Level, From: p.Level}),
		write(events.TenantRef(t.ID), t.Seq, events.SeatChangedV1{Principal: p.ID, From: p.Level, To: c.Level}),
	}, nil
}

func decideGrantPermission(f Facts, c *GrantPermission) ([]Write, error) {
	g := events.Grant{Permission: c.Permission, Scope: c.Scope}
	t, p, a, err := targetPrincipal(f, &c.CommandBase, c.Principal, func(t *Tenant) error {
		return knownPermission(t, c.Permission)
	})
	if err != nil {
		return nil, err
	}
	if err := a.handsOut(t, c.Permission+" at scope "+c.Scope, []events.Grant{g}); err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if _, has := slices.BinarySearchFunc(p.Grants, g, grantLess); has {
		return unchanged(ref, p.Seq), nil
	}
	return []Write{write(ref, p.Seq, events.PermissionGrantedV1{Grant: g})}, nil
}

func decideDenyPermission(f Facts, c *DenyPermission) ([]Write, error) {
	_, p, _, err := targetPrincipal(f, &c.CommandBase, c.Principal, func(t *Tenant) error {
		return knownPermission(t, c.Permission)
	})
	if err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if slices.Contains(p.Denied, c.Permission) {
		return unchanged(ref, p.Seq), nil
	}
	return []Write{write(ref, p.Seq, events.PermissionDeniedV1{Permission: c.Permission})}, nil
}

// decideClearPermission also accepts a name the policy no longer lists when the principal still
// has a direct grant or denial of it: SetPolicy only protects the names roles use, so clearing
// must be able to tidy up direct ones.
func decideClearPermission(f Facts, c *ClearPermission) ([]Write, error) {
	has := func(p *Principal) bool {
		return p != nil && (slices.Contains(p.Denied, c.Permission) ||
			slices.ContainsFunc(p.Grants, func(g events.Grant) bool { return g.Permission == c.Permission }))
	}
	_, p, _, err := targetPrincipal(f, &c.CommandBase, c.Principal, func(t *Tenant) error {
		if has(f.Principal(c.Principal)) {
			return nil
		}
		return knownPermission(t, c.Permission)
	})
	if err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	if !has(p) {
		return unchanged(ref, p.Seq), nil
	}
	return []Write{write(ref, p.Seq, events.PermissionClearedV1{Permission: c.Permission})}, nil
}

func decideUnitMembership(f Facts, b *CommandBase, principal string, u events.UnitRef, join bool) ([]Write, error) {
	t, err := existingTenant(f, b)
	if err != nil {
		return nil, err
	}
	p, err := activePrincipal(f, t, principal)
	if err != nil {
		return nil, err
	}
	if err := definedUnits(t, []events.UnitRef{u}); err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, b.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.allowed(f, ManageAccess, principalRef(p)); err != nil {
		return nil, err
	}
	ref := events.PrincipalRef(p.ID)
	_, member := slices.BinarySearchFunc(p.Units, u, unitLess)
	switch {
	case join && !member:
		return []Write{write(ref, p.Seq, events.UnitJoinedV1{Unit: u})}, nil
	case !join && member:
		return []Write{write(ref, p.Seq, events.UnitLeftV1{Unit: u})}, nil
	}
	return unchanged(ref, p.Seq), nil
}

// decideRemovePrincipal frees the principal's seat in the same batch when it holds one.
func decideRemovePrincipal(f Facts, c *RemovePrincipal) ([]Write, error) {
	t, p, _, err := targetPrincipal(f, &c.CommandBase, c.Principal, nil)
	if err != nil {
		return nil, err
	}
	ws := []Write{write(events.PrincipalRef(p.ID), p.Seq, events.PrincipalRemovedV1{})}
	if p.Level != LevelDisabled {
		ws = append(ws, write(events.TenantRef(t.ID), t.Seq, events.SeatChangedV1{Principal: p.ID, From: p.Level, To: ""}))
	}
	return ws, nil
}
