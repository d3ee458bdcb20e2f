package commands

import (
	"context"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Typed shorthands for the common commands, each with a fresh command id. For a retry of a
// command whose answer was lost, use Do with the command (and its command_id) again.

// CreateTenant creates a tenant from a preset with its first administrator (actor system).
func (c *Client) CreateTenant(ctx context.Context, tenant, preset string, admin aggregates.RegisterPrincipal) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.CreateTenant{CommandBase: base(aggregates.SystemActor), Preset: preset, Admin: admin})
}

// SetSubscription replaces the tenant's features and seat limits (actor system).
func (c *Client) SetSubscription(ctx context.Context, tenant string, features []string, seats map[string]int) (Result, error) {
	if features == nil {
		features = []string{}
	}
	if seats == nil {
		seats = map[string]int{}
	}
	return c.Do(ctx, tenant, &aggregates.SetSubscription{CommandBase: base(aggregates.SystemActor), Features: &features, Seats: seats})
}

// DefineUnit defines a location, team or area.
func (c *Client) DefineUnit(ctx context.Context, tenant, actor string, unit events.UnitRef) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.DefineUnit{CommandBase: base(actor), Unit: unit})
}

// RegisterPrincipal registers a principal (at level disabled, without roles).
func (c *Client) RegisterPrincipal(ctx context.Context, tenant, actor string, p aggregates.RegisterPrincipal) (Result, error) {
	p.CommandBase = base(actor)
	return c.Do(ctx, tenant, &p)
}

// AssignRole gives a principal a role.
func (c *Client) AssignRole(ctx context.Context, tenant, actor, principal, role string) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.AssignRole{CommandBase: base(actor), Principal: principal, Role: role})
}

// RevokeRole takes a role from a principal.
func (c *Client) RevokeRole(ctx context.Context, tenant, actor, principal, role string) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.RevokeRole{CommandBase: base(actor), Principal: principal, Role: role})
}

// SetAccessLevel sets a principal's access level.
func (c *Client) SetAccessLevel(ctx context.Context, tenant, actor, principal, level string) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.SetAccessLevel{CommandBase: base(actor), Principal: principal, Level: level})
}

// GrantPermission gives a principal a direct grant.
func (c *Client) GrantPermission(ctx context.Context, tenant, actor, principal string, g events.Grant) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.GrantPermission{CommandBase: base(actor), Principal: principal, Permission: g.Permission, Scope: g.Scope})
}

// RegisterRecord registers a record.
func (c *Client) RegisterRecord(ctx context.Context, tenant, actor string, r events.RecordBody) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.RegisterRecord{CommandBase: base(actor), RecordBody: r})
}

// AssignRecord gives a principal a relation to a record ("" is assignee).
func (c *Client) AssignRecord(ctx context.Context, tenant, actor, typ, id, principal, relation string) (Result, error) {
	return c.Do(ctx, tenant, &aggregates.AssignRecord{CommandBase: base(actor), Type: typ, ID: id, Principal: principal, Relation: relation})
}

func base(actor string) aggregates.CommandBase { return aggregates.CommandBase{Actor: actor} }
