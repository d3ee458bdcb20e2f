package main

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Phase names; also part of the command ids.
const (
	phaseTenant     = "tenant"
	phaseUnits      = "units"
	phaseClients    = "clients"
	phasePrincipals = "principals"
	phaseRecords    = "records"
)

// Phase is one step of loading a tenant. Items are independent of each other (each writes its
// own aggregate, or commutes with the others on the tenant), so a loader may run them in any
// order and concurrently; the commands of one item are one chain and run in order. A phase
// starts when the previous one is done: principals need their units, records their clients.
type Phase struct {
	Name  string
	Items int
	Item  func(i int) []aggregates.Command
}

// Phases are the commands that load the tenant, in phase order.
func (t *Tenant) Phases() []Phase {
	units := t.Locations + t.Teams + t.Areas
	return []Phase{
		{Name: phaseTenant, Items: 1, Item: func(int) []aggregates.Command { return t.tenantCommands() }},
		{Name: phaseUnits, Items: units, Item: func(i int) []aggregates.Command {
			return []aggregates.Command{&aggregates.DefineUnit{CommandBase: t.base(phaseUnits, i, 0), Unit: t.unitAt(i)}}
		}},
		{Name: phaseClients, Items: t.Clients, Item: func(i int) []aggregates.Command {
			return []aggregates.Command{&aggregates.RegisterRecord{CommandBase: t.base(phaseClients, i, 0), RecordBody: t.ClientRecord(i)}}
		}},
		{Name: phasePrincipals, Items: t.Principals, Item: t.PrincipalCommands},
		{Name: phaseRecords, Items: t.Records, Item: func(i int) []aggregates.Command {
			return []aggregates.Command{&aggregates.RegisterRecord{CommandBase: t.base(phaseRecords, i, 0), RecordBody: t.Record(i)}}
		}},
	}
}

// tenantCommands create the tenant with its administrator and its subscription (actor system).
func (t *Tenant) tenantCommands() []aggregates.Command {
	features := append([]string{}, t.prof.features...)
	sys := func(step int) aggregates.CommandBase {
		b := t.base(phaseTenant, 0, step)
		b.Actor = aggregates.SystemActor
		return b
	}
	return []aggregates.Command{
		&aggregates.CreateTenant{CommandBase: sys(0), Preset: t.Preset, Admin: aggregates.RegisterPrincipal{
			Principal: Admin, Kind: aggregates.KindStaff, Email: Admin + "@" + t.ID + ".test"}},
		&aggregates.SetSubscription{CommandBase: sys(1), Features: &features, Seats: map[string]int{}},
	}
}

// unitAt is the i-th unit: locations, then teams, then areas.
func (t *Tenant) unitAt(i int) events.UnitRef {
	switch {
	case i < t.Locations:
		return events.UnitRef{Kind: aggregates.UnitLocation, ID: locationID(i)}
	case i < t.Locations+t.Teams:
		return events.UnitRef{Kind: aggregates.UnitTeam, ID: teamID(i - t.Locations)}
	default:
		return events.UnitRef{Kind: aggregates.UnitArea, ID: areaID(i - t.Locations - t.Teams)}
	}
}

// base is the command base of step of item i of a phase: actor admin, a deterministic id.
func (t *Tenant) base(phase string, i, step int) aggregates.CommandBase {
	return aggregates.CommandBase{CommandID: commandID(t.seed, t.ID, phase, i, step), Actor: Admin, Tenant: t.ID}
}

// CommandCount is how many commands loading the tenant issues (for progress and rates).
func (t *Tenant) CommandCount() int {
	n := 0
	for _, ph := range t.Phases() {
		if ph.Items == 0 {
			continue
		}
		if ph.Name == phasePrincipals {
			n += 3 * ph.Items // about: register, role, level (grants and denials are few)
			continue
		}
		n += ph.Items * len(ph.Item(0))
	}
	return n
}
