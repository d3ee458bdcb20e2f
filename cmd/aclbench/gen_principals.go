package main

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// PrincipalSpec is one generated principal: who it is and what it is given after registering.
type PrincipalSpec struct {
	ID     string
	Kind   string
	Email  string
	Client string
	Units  []events.UnitRef
	Role   string
	Level  string
	Grant  string // a direct grant at scope all, or ""
	Deny   string // a denied permission, or ""
}

// Principal returns principal j (0 <= j < t.Principals).
func (t *Tenant) Principal(j int) PrincipalSpec {
	r := rngFor(t.seed, t.ID, streamPrincipal, j)
	mix := t.prof.kinds[t.kslots[j%len(t.kslots)]]
	p := PrincipalSpec{ID: principalID(j), Kind: mix.kind, Email: principalID(j) + "@" + t.ID + ".test"}
	p.Role = pick(r, mix.roles)
	p.Level = pick(r, mix.levels)
	if mix.kind == aggregates.KindClientContact {
		p.Client = clientID(t.contactRank(j) % t.Clients)
	} else {
		// One branch, one team, one area each: the unit scopes all select something.
		p.Units = []events.UnitRef{
			{Kind: aggregates.UnitLocation, ID: locationID(r.IntN(t.Locations))},
			{Kind: aggregates.UnitTeam, ID: teamID(r.IntN(t.Teams))},
			{Kind: aggregates.UnitArea, ID: areaID(r.IntN(t.Areas))},
		}
		switch n := r.IntN(100); {
		case n < 3:
			p.Grant = t.prof.grant
		case n < 4:
			p.Deny = t.prof.deny
		}
	}
	return p
}

// contactRank is the index of principal j among the client contacts (j must be one).
func (t *Tenant) contactRank(j int) int {
	slot := j % len(t.kslots)
	pos := 0
	for k, s := range t.contacts {
		if s == slot {
			pos = k
		}
	}
	return (j/len(t.kslots))*len(t.contacts) + pos
}

// contactOf returns the m-th client contact of client c, or false when the tenant has fewer.
func (t *Tenant) contactOf(c, m int) (string, bool) {
	if len(t.contacts) == 0 {
		return "", false
	}
	rank := c + m*t.Clients
	j := (rank/len(t.contacts))*len(t.kslots) + t.contacts[rank%len(t.contacts)]
	if j >= t.Principals {
		return "", false
	}
	return principalID(j), true
}

// isContact reports whether principal j is a client contact.
func (t *Tenant) isContact(j int) bool {
	return t.prof.kinds[t.kslots[j%len(t.kslots)]].kind == aggregates.KindClientContact
}

// worker draws a principal who is not a client contact (staff or employee): the assignees and
// owners of most records.
func (t *Tenant) worker(r interface{ IntN(int) int }) string {
	for range 16 {
		j := r.IntN(t.Principals)
		if !t.isContact(j) {
			return principalID(j)
		}
	}
	return Admin
}

// PrincipalCommands is what registers principal j and gives it its role, level and grants: one
// chain of commands on its aggregate, in order.
func (t *Tenant) PrincipalCommands(j int) []aggregates.Command {
	p := t.Principal(j)
	id := func(step int) aggregates.CommandBase { return t.base(phasePrincipals, j, step) }
	cmds := []aggregates.Command{
		&aggregates.RegisterPrincipal{CommandBase: id(0), Principal: p.ID, Kind: p.Kind, Email: p.Email,
			Client: p.Client, Units: p.Units},
		&aggregates.AssignRole{CommandBase: id(1), Principal: p.ID, Role: p.Role},
	}
	if p.Level != aggregates.LevelDisabled {
		cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: id(2), Principal: p.ID, Level: p.Level})
	}
	if p.Grant != "" {
		cmds = append(cmds, &aggregates.GrantPermission{CommandBase: id(3), Principal: p.ID,
			Permission: p.Grant, Scope: aggregates.ScopeAll})
	}
	if p.Deny != "" {
		cmds = append(cmds, &aggregates.DenyPermission{CommandBase: id(4), Principal: p.ID, Permission: p.Deny})
	}
	return cmds
}
