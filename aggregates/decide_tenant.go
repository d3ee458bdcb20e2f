package aggregates

import (
	"maps"
	"slices"
	"strings"

	"github.com/acl-es/acl/events"
)

// decideCreateTenant: the tenant with its preset and the SeatChanged of its first administrator,
// and that administrator (registered, holding the preset's administrator role, at level full),
// written together so that a tenant never exists without someone who can repair it.
func decideCreateTenant(f Facts, c *CreateTenant) ([]Write, error) {
	preset, err := Preset(c.Preset)
	if err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Message: "preset " + c.Preset + ": " + err.Error(), Err: err}
	}
	if len(c.Admin.Units) > 0 {
		// A new tenant has no units yet, so none can be joined (existence stage).
		return nil, definedUnits(NewTenant(c.Tenant), c.Admin.Units)
	}
	if err := systemOnly(&c.CommandBase, "create a tenant"); err != nil {
		return nil, err
	}
	t := f.Tenant()
	if t != nil && t.Exists {
		return nil, Errorf(CodeAlreadyExists, "tenant %s already exists", c.Tenant)
	}
	if c.Admin.Email == "" {
		return nil, Errorf(CodeEmailRequired, "the first administrator %s gets access level full, which requires an email: give admin.email", c.Admin.Principal)
	}
	if i := slices.IndexFunc(preset.Roles, func(r events.RoleDef) bool { return r.Role == preset.AdminRole }); i < 0 {
		return nil, Errorf(CodeInternal, "preset %s has no administrator role %q", c.Preset, preset.AdminRole)
	} else if err := kindFits(preset.Roles[i], c.Admin.Principal, c.Admin.Kind); err != nil {
		return nil, err
	}
	var tseq uint64
	if t != nil {
		tseq = t.Seq
	}
	admin := c.Admin.Principal
	return []Write{
		write(events.TenantRef(c.Tenant), tseq, preset,
			events.SeatChangedV1{Principal: admin, From: LevelDisabled, To: LevelFull}),
		write(events.PrincipalRef(admin), principalSeq(f.Principal(admin)),
			registered(&c.Admin),
			events.RoleAssignedV1{Role: preset.AdminRole},
			events.AccessLevelSetV1{Level: LevelFull, From: LevelDisabled}),
	}, nil
}

func decideSetSubscription(f Facts, c *SetSubscription) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if err := systemOnly(&c.CommandBase, "set the subscription"); err != nil {
		return nil, err
	}
	features := slices.Compact(slices.Sorted(slices.Values(*c.Features)))
	seats := make(map[string]int, len(c.Seats))
	for k, v := range c.Seats {
		seats[k] = v
	}
	// Lowering a limit below its use is allowed: nobody loses a level, no one more gets it.
	return []Write{write(events.TenantRef(t.ID), t.Seq, events.SubscriptionSetV1{Features: features, Seats: seats})}, nil
}

func decideDefineUnit(f Facts, c *DefineUnit) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if err := tenantManager(f, t, &c.CommandBase); err != nil {
		return nil, err
	}
	if t.HasUnit(c.Unit) {
		return nil, Errorf(CodeAlreadyExists, "%s %s is already defined in tenant %s", c.Unit.Kind, c.Unit.ID, t.ID)
	}
	return []Write{write(events.TenantRef(t.ID), t.Seq, events.UnitDefinedV1{Unit: c.Unit})}, nil
}

func decideDefineRole(f Facts, c *DefineRole) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	for _, g := range c.Grants {
		if err := knownPermission(t, g.Permission); err != nil {
			return nil, err
		}
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.managesTenant(t); err != nil {
		return nil, err
	}
	if err := a.handsOut(t, "role "+c.Role, c.Grants); err != nil {
		return nil, err
	}
	if _, ok := t.Roles[c.Role]; ok {
		return nil, Errorf(CodeAlreadyExists, "role %s already exists in tenant %s; change it with GrantRolePermission and RevokeRolePermission", c.Role, t.ID)
	}
	// A principal may still hold a deleted role of that id (an assignment that raced the
	// deletion): redefining it would hand that principal the new role silently.
	if p, err := roleHolder(f, c.Role); err != nil {
		return nil, err
	} else if p != "" {
		return nil, Errorf(CodeConflict, "principal %s still holds a former role %s; revoke it before defining the role again", p, c.Role)
	}
	grants := slices.Clone(c.Grants)
	slices.SortFunc(grants, grantLess)
	def := events.RoleDef{Role: c.Role, Grants: slices.Compact(grants), Exclusive: c.Exclusive,
		RequiresFeature: c.RequiresFeature, PrincipalKinds: slices.Compact(slices.Sorted(slices.Values(c.PrincipalKinds)))}
	if def.Grants == nil {
		def.Grants = []events.Grant{}
	}
	return []Write{write(events.TenantRef(t.ID), t.Seq, events.RoleDefinedV1{RoleDef: def})}, nil
}

// RoleHolders is the fact DeleteRole needs besides Facts: whether any principal holds a role.
// It is a separate interface because answering it means knowing every principal of the
// tenant, which the command service only loads for this rare command.
type RoleHolders interface {
	// RoleHolder returns an active principal that holds role, or "" when none does.
	RoleHolder(role string) string
}

// roleHolder asks the facts for a holder of role.
func roleHolder(f Facts, role string) (string, error) {
	rh, ok := f.(RoleHolders)
	if !ok {
		return "", Errorf(CodeInternal, "the facts cannot tell who holds role %s", role)
	}
	return rh.RoleHolder(role), nil
}

func decideDeleteRole(f Facts, c *DeleteRole) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if _, ok := t.Roles[c.Role]; !ok {
		return nil, Errorf(CodeNotFound, "role %s does not exist in tenant %s", c.Role, t.ID)
	}
	if err := tenantManager(f, t, &c.CommandBase); err != nil {
		return nil, err
	}
	if c.Role == t.AdminRole {
		return nil, adminRoleFixed(t)
	}
	if p, err := roleHolder(f, c.Role); err != nil {
		return nil, err
	} else if p != "" {
		return nil, Errorf(CodeConflict, "role %s is still held (by %s, at least); revoke it from every holder first", c.Role, p)
	}
	return []Write{write(events.TenantRef(t.ID), t.Seq, events.RoleDeletedV1{Role: c.Role})}, nil
}

func decideRolePermission(f Facts, b *CommandBase, role string, g events.Grant, grant bool) ([]Write, error) {
	t, err := existingTenant(f, b)
	if err != nil {
		return nil, err
	}
	if err := knownPermission(t, g.Permission); err != nil {
		return nil, err
	}
	r, ok := t.Roles[role]
	if !ok {
		return nil, Errorf(CodeNotFound, "role %s does not exist in tenant %s", role, t.ID)
	}
	a, err := actorOf(f, t, b.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.managesTenant(t); err != nil {
		return nil, err
	}
	if grant {
		if err := a.handsOut(t, g.Permission+" at scope "+g.Scope, []events.Grant{g}); err != nil {
			return nil, err
		}
	}
	if role == t.AdminRole {
		return nil, adminRoleFixed(t)
	}
	_, has := slices.BinarySearchFunc(r.Def.Grants, g, grantLess)
	ref := events.TenantRef(t.ID)
	switch {
	case grant && !has:
		return []Write{write(ref, t.Seq, events.RolePermissionGrantedV1{Role: role, Grant: g})}, nil
	case !grant && has:
		return []Write{write(ref, t.Seq, events.RolePermissionRevokedV1{Role: role, Grant: g})}, nil
	}
	return unchanged(ref, t.Seq), nil
}

func decideSetPolicy(f Facts, c *SetPolicy) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	p := normalizePolicy(*c.Policy)
	if err := policyNames(p); err != nil {
		return nil, err
	}
	if err := tenantManager(f, t, &c.CommandBase); err != nil {
		return nil, err
	}
	// The administrator role must keep what it needs to repair the tenant; the other roles must
	// keep every name they use (the administrator role uses every name implicitly, so it does
	// not block dropping one).
	for _, need := range []string{ManageAccess, SessionLogin} {
		if !slices.Contains(p.Permissions, need) {
			return nil, Errorf(CodeConflict, "the policy must name %s: the administrator role %s needs it so that someone can always repair tenant %s",
				need, t.AdminRole, t.ID)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.Roles)) {
		if id == t.AdminRole {
			continue
		}
		for _, g := range t.Roles[id].Def.Grants {
			if !slices.Contains(p.Permissions, g.Permission) {
				return nil, Errorf(CodeConflict, "the policy drops %s, which role %s still grants; revoke it from the role first", g.Permission, id)
			}
		}
	}
	return []Write{write(events.TenantRef(t.ID), t.Seq, events.PolicySetV1{Policy: p})}, nil
}

// policyNames is the names stage of SetPolicy: every permission its rules use is one it lists.
func policyNames(p events.Policy) error {
	known := func(perm, where string) error {
		if !slices.Contains(p.Permissions, perm) {
			return Errorf(CodeUnknownPermission, "the policy's %s names %s, which its permissions do not list", where, perm)
		}
		return nil
	}
	for _, u := range p.Unscoped {
		if err := known(u, "unscoped list"); err != nil {
			return err
		}
	}
	for _, l := range p.Limited {
		if err := known(l.Permission, "limited exceptions"); err != nil {
			return err
		}
	}
	for _, im := range p.Implies {
		if err := firstErr(known(im.Permission, "implication"), known(im.Grants, "implication")); err != nil {
			return err
		}
	}
	return nil
}

// normalizePolicy removes duplicate names and turns missing lists into empty ones, so the
// stored policy reads the same however it was sent.
func normalizePolicy(p events.Policy) events.Policy {
	p.Permissions = dedupe(p.Permissions)
	p.Unscoped = dedupe(p.Unscoped)
	if p.Limited == nil {
		p.Limited = []events.LimitedException{}
	}
	if p.Links == nil {
		p.Links = []events.LinkRule{}
	}
	if p.Implies == nil {
		p.Implies = []events.Implication{}
	}
	return p
}

// dedupe keeps the first of every string, in order; never nil.
func dedupe(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// tenantManager is the actor guard of tenant commands: system, or user.manage_access at scope
// all after narrowing.
func tenantManager(f Facts, t *Tenant, b *CommandBase) error {
	a, err := actorOf(f, t, b.Actor)
	if err != nil {
		return err
	}
	return a.managesTenant(t)
}

// knownPermission is the names guard: a permission the policy does not list is a typo, never a
// silent grant or denial.
func knownPermission(t *Tenant, perm string) error {
	if !t.KnowsPermission(perm) {
		hint := ""
		if res, _, ok := strings.Cut(perm, "."); ok {
			for _, p := range t.Policy.Permissions {
				if strings.HasPrefix(p, res+".") {
					hint += " " + p
				}
			}
		}
		if hint != "" {
			hint = "; it knows:" + hint
		}
		return Errorf(CodeUnknownPermission, "permission %s is not in the policy of tenant %s%s", perm, t.ID, hint)
	}
	return nil
}

func adminRoleFixed(t *Tenant) error {
	return Errorf(CodeConflict, "role %s is the administrator role of tenant %s; it cannot be changed or deleted, so that someone can always repair the tenant",
		t.AdminRole, t.ID)
}
