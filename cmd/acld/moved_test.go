package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// TestOldCommandRetried: in a live acld (defaults: the spill on), a case written 148 times (more
// than the 48 commands a state keeps) answers a retry of its oldest commands with what they
// answered the first time, over NATS as a service sends them, and conflict for an old id with
// another body; a new command is decided as before; and after a restart on the same data
// directory the same. Without the spill's moved commands the registration's retry would be
// decided again (already_exists).
func TestOldCommandRetried(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	do := func(c *commands.Client, cmd aggregates.Command) (commands.Result, error) {
		if cmd.Base().CommandID == "" {
			cmd.Base().CommandID = uuid.NewString()
		}
		if cmd.Base().Actor == "" {
			cmd.Base().Actor = "ann"
		}
		return c.Do(ctx, "acme", cmd)
	}
	c := commands.NewClient(m.Conn())
	must := func(cmd aggregates.Command) commands.Result {
		t.Helper()
		res, err := do(c, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	must(&aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	must(&aggregates.RegisterPrincipal{Principal: "bob", Kind: aggregates.KindStaff, Email: "bob@acme.test"})
	type sent struct {
		cmd aggregates.Command
		res commands.Result
	}
	reg := &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: "hot"}}
	done := []sent{{reg, must(reg)}}
	for i := range 147 {
		var cmd aggregates.Command = &aggregates.AssignRecord{Type: "case", ID: "hot", Principal: "bob"}
		if i%2 == 1 {
			cmd = &aggregates.UnassignRecord{Type: "case", ID: "hot", Principal: "bob"}
		}
		done = append(done, sent{cmd, must(cmd)})
	}
	check := func(c *commands.Client, name string) {
		t.Helper()
		for _, k := range []int{0, 1, 2, 100} {
			res, err := do(c, done[k].cmd)
			if err != nil || res.Seq != done[k].res.Seq || !slices.Equal(res.Events, done[k].res.Events) {
				t.Fatalf("%s: command %d sent again: %+v, %v; answered %+v the first time", name, k, res, err, done[k].res)
			}
		}
		first := done[1].cmd.(*aggregates.AssignRecord)
		_, err := do(c, &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{CommandID: first.CommandID},
			Type: "case", ID: "hot", Principal: "ann"})
		var ae *aggregates.Error
		if !errors.As(err, &ae) || ae.Code != aggregates.CodeConflict {
			t.Fatalf("%s: the first assignment's id with another body: %v, want conflict", name, err)
		}
	}
	check(c, "live")
	if res := must(&aggregates.UnassignRecord{Type: "case", ID: "hot", Principal: "bob"}); len(res.Events) == 0 {
		t.Fatal("a new unassignment wrote nothing") // the last of the 147 assigned bob
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, func(c *Config) { c.DataDir = dir })
	check(commands.NewClient(m.Conn()), "after a restart")
}
