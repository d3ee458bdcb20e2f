package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// DemoTenant is the tenant --demo creates: preset trackops, a few principals and records, so a
// new user can try a query at once (the README shows some).
const DemoTenant = "demo"

// demoNamespace makes the demo's command ids deterministic: starting with --demo again retries
// the same commands, which the service answers as before and writes nothing.
var demoNamespace = uuid.MustParse("6f1b2a53-3c47-4d0e-9a43-7d1c6f0e2a10")

func demoCommands() []aggregates.Command {
	unit := func(kind, id string) events.UnitRef { return events.UnitRef{Kind: kind, ID: id} }
	staff := func(id, role, level string, units ...events.UnitRef) []aggregates.Command {
		return []aggregates.Command{
			&aggregates.RegisterPrincipal{Principal: id, Kind: aggregates.KindStaff, Email: id + "@demo.test", Units: units},
			&aggregates.AssignRole{Principal: id, Role: role},
			&aggregates.SetAccessLevel{Principal: id, Level: level},
		}
	}
	rec := func(typ, id, client string, units []events.UnitRef, as []events.Assignee, links []events.RecordRef) aggregates.Command {
		return &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: typ, ID: id, Client: client, Units: units, Assignees: as, Links: links}}
	}
	east, west := unit("location", "east"), unit("location", "west")
	cmds := []aggregates.Command{
		&aggregates.CreateTenant{Preset: "trackops", Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@demo.test"}},
		&aggregates.DefineUnit{Unit: east},
		&aggregates.DefineUnit{Unit: west},
	}
	cmds = append(cmds, staff("bob", "staff", aggregates.LevelLimited, east)...)
	cmds = append(cmds, staff("carl", "staff", aggregates.LevelFullLocation, west)...)
	cmds = append(cmds, staff("sam", "staff", aggregates.LevelLimited, east)...)
	cmds = append(cmds,
		&aggregates.RegisterPrincipal{Principal: "cora", Kind: aggregates.KindClientContact, Email: "cora@acme.test", Client: "acme"},
		&aggregates.AssignRole{Principal: "cora", Role: "client_contact"},
		&aggregates.SetAccessLevel{Principal: "cora", Level: aggregates.LevelFull},
		rec("client", "acme", "", nil, nil, nil),
		rec("client", "globex", "", nil, nil, nil),
		rec("case", "case-1", "acme", []events.UnitRef{east}, []events.Assignee{{Principal: "bob", Relation: "assignee"}}, nil),
		rec("case", "case-2", "globex", []events.UnitRef{west}, nil, nil),
		rec("invoice", "inv-1", "acme", []events.UnitRef{east}, nil, []events.RecordRef{{Type: "case", ID: "case-1"}}),
		rec("invoice", "inv-2", "globex", []events.UnitRef{west}, []events.Assignee{{Principal: "sam", Relation: "salesperson"}}, nil),
		rec("invoice", "inv-3", "acme", []events.UnitRef{west}, nil, nil),
	)
	return cmds
}

// createDemo issues the demo's commands as the system actor (CreateTenant) and as ann, its
// administrator. Every command has a deterministic id, so running it twice changes nothing.
func createDemo(ctx context.Context, s *commands.Service, log *slog.Logger) error {
	for i, cmd := range demoCommands() {
		b := cmd.Base()
		b.CommandID = uuid.NewSHA1(demoNamespace, fmt.Appendf(nil, "%s/%d", DemoTenant, i)).String()
		b.Actor = "ann"
		if _, ok := cmd.(*aggregates.CreateTenant); ok {
			b.Actor = aggregates.SystemActor
		}
		b.Tenant = DemoTenant
		// Given to the service in process, as acld itself (via "acld"): no request crosses
		// NATS, so none needs a caller identity.
		if _, err := s.Execute(ctx, cmd); err != nil {
			return fmt.Errorf("%s: %w", cmd.Name(), err)
		}
	}
	log.Info("demo tenant ready", "tenant", DemoTenant, "admin", "ann")
	return nil
}
