package commands

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestRetrySameCommandID: a retry answers the seq and event ids of the first answer and writes
// nothing, from the instance that wrote it and from a fresh one (no cache: the ids come from
// the aggregate's state in the store); the same id with another body is conflict.
func TestRetrySameCommandID(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	cases := []struct {
		name  string
		cmd   func(id string) aggregates.Command
		other func(id string) aggregates.Command // same id, another body
		nev   int
	}{
		{"one aggregate", func(id string) aggregates.Command {
			return &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{CommandID: id},
				RecordBody: events.RecordBody{Type: "invoice", ID: "inv-1", Units: []events.UnitRef{team("t1")}}}
		}, func(id string) aggregates.Command {
			return &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{CommandID: id},
				RecordBody: events.RecordBody{Type: "invoice", ID: "inv-1", Units: []events.UnitRef{team("t2")}}}
		}, 1},
		{"the tenant (its memory is kept out of its cached states)", func(id string) aggregates.Command {
			return &aggregates.DefineUnit{CommandBase: aggregates.CommandBase{CommandID: id}, Unit: team("t7")}
		}, func(id string) aggregates.Command {
			return &aggregates.DefineUnit{CommandBase: aggregates.CommandBase{CommandID: id}, Unit: team("t8")}
		}, 1},
		{"batch of two aggregates", func(id string) aggregates.Command {
			return &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{CommandID: id}, Principal: "erin", Level: aggregates.LevelLimited}
		}, func(id string) aggregates.Command {
			return &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{CommandID: id}, Principal: "erin", Level: aggregates.LevelFull}
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := uuid.NewString()
			first := e.must("admin", c.cmd(id))
			if len(first.Events) != c.nev || first.Seq != e.lastSeq() {
				t.Fatalf("first answer %+v, want %d events and seq %d", first, c.nev, e.lastSeq())
			}
			again := e.must("admin", c.cmd(id))
			fresh := e.addService(t, Options{}) // a new instance with an empty cache
			ctx := e.ctx
			cmd := c.cmd(id)
			cmd.Base().Actor, cmd.Base().Tenant = "admin", "acme"
			third, err := fresh.Execute(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []Result{again, third} {
				if !reflect.DeepEqual(r, first) {
					t.Fatalf("retry answered %+v, first answer %+v", r, first)
				}
			}
			if e.lastSeq() != first.Seq {
				t.Fatalf("retries wrote: last seq %d, first answer %d", e.lastSeq(), first.Seq)
			}
			if code := e.try("admin", c.other(id)); code != aggregates.CodeConflict {
				t.Fatalf("same id, other body: %q, want conflict", code)
			}
		})
	}
}
