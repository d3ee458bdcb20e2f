package commands

import (
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
)

// TestBatchRepeatInGroupAnswersAsAlone: a batch that carries one command twice (same id, same
// body) answers the second as a retry sent alone after the first is answered: the first one's
// seq and events. The commands here join the batch's open atomic batch (they write the
// tenant's seats, or read the tenant it writes), whose states the second one finds the command
// in before the atomic batch is stored.
func TestBatchRepeatInGroupAnswersAsAlone(t *testing.T) {
	for _, c := range []struct {
		name string
		cmds func(e *testEnv) []aggregates.Command
		// the indexes of the repeated command's two sends
		first, again int
	}{
		{"seat change twice", func(e *testEnv) []aggregates.Command {
			x := &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: newID(e.t)},
				Principal: "erin", Level: aggregates.LevelLimited}
			return []aggregates.Command{x, x}
		}, 0, 1},
		{"a role twice after a seat change", func(e *testEnv) []aggregates.Command {
			x := &aggregates.AssignRole{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: newID(e.t)},
				Principal: "carl", Role: "work_manager"}
			return []aggregates.Command{
				&aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: newID(e.t)},
					Principal: "erin", Level: aggregates.LevelLimited},
				x, x}
		}, 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startEnv(t, 1)
			e.reconpro()
			cmds := c.cmds(e)
			outs, err := e.c.Batch(e.ctx, "acme", batchOf(t, cmds))
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(cmds) {
				t.Fatalf("%d outcomes for %d commands", len(outs), len(cmds))
			}
			for i, o := range outs {
				if o.Err != nil {
					t.Fatalf("command %d: %v", i, o.Err)
				}
			}
			first, again := outs[c.first].Result, outs[c.again].Result
			if again.Seq != first.Seq || !slices.Equal(again.Events, first.Events) {
				t.Fatalf("the repeated command answered %+v the second time, %+v the first", again, first)
			}
			// Sent alone now, it answers the same too.
			res := e.must("admin", cmds[c.first])
			if res.Seq != first.Seq || !slices.Equal(res.Events, first.Events) {
				t.Fatalf("the command sent alone after the batch answered %+v, %+v in the batch", res, first)
			}
		})
	}
}
