package commands

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// targets are the aggregates a command may write, the ones whose write lock it takes and whose
// remembered command ids tell a retry. It follows Decide: tenant commands write the tenant,
// principal commands the principal, record commands the record; SetAccessLevel and
// RemovePrincipal also the tenant (seats), CreateTenant also its first administrator.
func targets(cmd aggregates.Command) []events.AggregateRef {
	tenant := events.TenantRef(cmd.Base().Tenant)
	switch c := cmd.(type) {
	case *aggregates.CreateTenant:
		return []events.AggregateRef{tenant, events.PrincipalRef(c.Admin.Principal)}
	case *aggregates.SetAccessLevel:
		return []events.AggregateRef{events.PrincipalRef(c.Principal), tenant}
	case *aggregates.RemovePrincipal:
		return []events.AggregateRef{events.PrincipalRef(c.Principal), tenant}
	case *aggregates.RegisterPrincipal:
		return principal(c.Principal)
	case *aggregates.SetEmail:
		return principal(c.Principal)
	case *aggregates.AssignRole:
		return principal(c.Principal)
	case *aggregates.RevokeRole:
		return principal(c.Principal)
	case *aggregates.GrantPermission:
		return principal(c.Principal)
	case *aggregates.DenyPermission:
		return principal(c.Principal)
	case *aggregates.ClearPermission:
		return principal(c.Principal)
	case *aggregates.JoinUnit:
		return principal(c.Principal)
	case *aggregates.LeaveUnit:
		return principal(c.Principal)
	case *aggregates.RegisterRecord:
		return record(c.Type, c.ID)
	case *aggregates.UpdateRecord:
		return record(c.Type, c.ID)
	case *aggregates.AssignRecord:
		return record(c.Type, c.ID)
	case *aggregates.UnassignRecord:
		return record(c.Type, c.ID)
	case *aggregates.RemoveRecord:
		return record(c.Type, c.ID)
	}
	return []events.AggregateRef{tenant} // the other tenant commands
}

func principal(id string) []events.AggregateRef {
	return []events.AggregateRef{events.PrincipalRef(id)}
}

func record(typ, id string) []events.AggregateRef {
	return []events.AggregateRef{events.RecordAggregate(typ, id)}
}

// aggregateKey names an aggregate in a message id: "principal.bob", "record.invoice.inv-1".
func aggregateKey(a events.AggregateRef) string {
	if a.Kind == events.KindRecord {
		return a.Kind + "." + a.Type + "." + a.ID
	}
	return a.Kind + "." + a.ID
}

// creates reports whether cmd creates the aggregate ref (so that it is normally empty).
func creates(cmd aggregates.Command, ref events.AggregateRef) bool {
	switch cmd.(type) {
	case *aggregates.CreateTenant:
		return true
	case *aggregates.RegisterPrincipal:
		return ref.Kind == events.KindPrincipal
	case *aggregates.RegisterRecord:
		return ref.Kind == events.KindRecord
	}
	return false
}
