package commands

import (
	"fmt"
	"maps"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The cache holds aggregate states that are shared, read-only, by every command deciding on
// them. A writer never applies to a shared state: it clones it, applies its events to the clone
// and publishes the clone. Apply replaces slices (insertSorted and friends clone) but writes
// into maps and into a role's fields, so a clone copies every map and every role.

// newState is the state of an aggregate before its first event.
func newState(ref events.AggregateRef) any {
	switch ref.Kind {
	case events.KindTenant:
		return aggregates.NewTenant(ref.ID)
	case events.KindPrincipal:
		return aggregates.NewPrincipal(ref.ID)
	default:
		return aggregates.NewRecord(ref.Type, ref.ID)
	}
}

// stateSeq is the last sequence applied to a state.
func stateSeq(st any) uint64 {
	switch s := st.(type) {
	case *aggregates.Tenant:
		return s.Seq
	case *aggregates.Principal:
		return s.Seq
	case *aggregates.Record:
		return s.Seq
	}
	return 0
}

// stateCommands is what a principal or a record remembers of the commands it applied (a
// tenant's memory is its entry's commandIndex); nil for a tenant.
func stateCommands(st any) *aggregates.Commands {
	switch s := st.(type) {
	case *aggregates.Principal:
		return &s.Commands
	case *aggregates.Record:
		return &s.Commands
	}
	return nil
}

// applyEnvelope folds one stored event into a state the caller owns.
func applyEnvelope(st any, env events.Envelope) error {
	d, err := events.Decode(env)
	if err != nil {
		return err
	}
	return applyData(st, env, d)
}

// applyData is applyEnvelope with the event's data already decoded (events.Decode(env)); the
// state may keep parts of d, so d must be the caller's, used for this one state.
func applyData(st any, env events.Envelope, d events.Data) error {
	switch s := st.(type) {
	case *aggregates.Tenant:
		s.Apply(env, d)
	case *aggregates.Principal:
		s.Apply(env, d)
	case *aggregates.Record:
		s.Apply(env, d)
	default:
		return fmt.Errorf("commands: apply %s to a %T", env.Type, st)
	}
	return nil
}

// cloneState returns a copy of st that shares nothing Apply writes into.
func cloneState(st any) any {
	switch s := st.(type) {
	case *aggregates.Tenant:
		c := *s
		c.Roles = make(map[string]*aggregates.Role, len(s.Roles))
		for id, r := range s.Roles {
			rc := *r
			rc.GrantEvents = maps.Clone(r.GrantEvents)
			c.Roles[id] = &rc
		}
		c.Units = maps.Clone(s.Units)
		c.Seats = maps.Clone(s.Seats)
		c.SeatHolders = maps.Clone(s.SeatHolders)
		c.Commands = cloneCommands(s.Commands)
		return &c
	case *aggregates.Principal:
		c := *s
		c.Prov = maps.Clone(s.Prov)
		c.Commands = s.Commands.Clone()
		return &c
	case *aggregates.Record:
		c := *s
		c.Prov = maps.Clone(s.Prov)
		c.Commands = s.Commands.Clone()
		return &c
	}
	return st
}

// cloneCommands copies the map and clips each result's event list, so that an append to a
// clone's list never writes into the shared array.
func cloneCommands(m map[string]aggregates.CommandResult) map[string]aggregates.CommandResult {
	c := make(map[string]aggregates.CommandResult, len(m)+1)
	for k, v := range m {
		v.Events = slices.Clip(v.Events)
		c[k] = v
	}
	return c
}
