package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

// bulkCommands is a tenant's first commands as an import sends them: the tenant, principals,
// cases assigned to them and a second assignment of some.
func bulkCommands(t *testing.T, tenant string, principals, records int) [][]commands.BatchCommand {
	t.Helper()
	var all []commands.BatchCommand
	add := func(cmd aggregates.Command) {
		cmd.Base().CommandID = uuid.NewString()
		body, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, commands.BatchCommand{Command: cmd.Name(), Body: body})
	}
	admin := aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@" + tenant + ".test"}
	add(&aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops", Admin: admin})
	actor := aggregates.CommandBase{Actor: "admin"}
	pid := func(j int) string { return fmt.Sprintf("p-%04d", j) }
	for j := range principals {
		add(&aggregates.RegisterPrincipal{CommandBase: actor, Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@" + tenant + ".test"})
		add(&aggregates.SetAccessLevel{CommandBase: actor, Principal: pid(j), Level: aggregates.LevelLimited})
		add(&aggregates.AssignRole{CommandBase: actor, Principal: pid(j), Role: "staff"})
	}
	for i := range records {
		body := events.RecordBody{Type: "case", ID: fmt.Sprintf("case-%05d", i), Client: "c1",
			Assignees: []events.Assignee{{Principal: pid(i % principals), Relation: events.DefaultRelation}}}
		add(&aggregates.RegisterRecord{CommandBase: actor, RecordBody: body})
		if i%5 == 0 {
			add(&aggregates.AssignRecord{CommandBase: actor, Type: body.Type, ID: body.ID, Principal: pid((i + 1) % principals)})
		}
	}
	var batches [][]commands.BatchCommand
	for len(all) > 0 {
		n := min(len(all), 200)
		batches = append(batches, all[:n])
		all = all[n:]
	}
	return batches
}

// TestBulkLoadFollowersYield: while batch requests come, the read model's projector and the
// audit index hold (within --bulk-lag); a query with min_seq answers anyway; after the load
// both catch up, and the read model equals one rebuilt from the stream.
func TestBulkLoadFollowersYield(t *testing.T) {
	m := startMain(t, func(c *Config) { c.BulkLag = 100_000 })
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client := commands.NewClient(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := m.proj.Applied()

	var last uint64
	batches := bulkCommands(t, "bulk", 20, 600)
	for k, b := range batches {
		out, err := client.BatchLoad(ctx, "bulk", b)
		if err != nil || len(out) != len(b) {
			t.Fatalf("batch %d: %d of %d answers, %v", k, len(out), len(b), err)
		}
		for i, o := range out {
			if o.Err != nil {
				t.Fatalf("batch %d command %d (%s): %v", k, i, b[i].Command, o.Err)
			}
			last = max(last, o.Result.Seq)
		}
		if k == 0 {
			continue
		}
		// Checked within bulkQuiet of the answer: the load still runs.
		if p, a := m.proj.Applied(), m.replay.Audit().Applied(); p > start || a > start {
			t.Fatalf("after batch %d (seq %d) the read model applied %d and the audit index %d; want both held at %d", k, last, p, a, start)
		}
	}
	if lag := last - m.proj.Applied(); lag == 0 {
		t.Fatal("the read model caught up during the load: nothing held it")
	}
	// A query with min_seq gets the read model going at once, load or not.
	ans, err := client.Check(ctx, "bulk", aggregates.CheckQuery{Principal: "p-0001", Permission: "case.view",
		Record: &events.RecordRef{Type: "case", ID: "case-00001"}}, commands.MinSeq(last))
	if err != nil {
		t.Fatalf("check with min_seq %d during the load: %v", last, err)
	}
	if !ans.Allowed {
		t.Fatalf("p-0001 may not view case-00001 it is assigned: %+v", ans)
	}
	if a := m.proj.Applied(); a < last {
		t.Fatalf("the check answered with the read model at %d; want at least %d", a, last)
	}
	if err := m.replay.Audit().WaitFor(ctx, last); err != nil {
		t.Fatalf("the audit index did not catch up after the load: at %d, want %d", m.replay.Audit().Applied(), last)
	}

	// What the held followers built equals a rebuild from the stream, key by key.
	if err := m.proj.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, c := range []struct {
		model replay.Model
		save  func(string) error
	}{
		{replay.ModelProjections, m.db.Checkpoint},
		{replay.ModelAudit, m.replay.Audit().Checkpoint},
	} {
		dir := filepath.Join(tmp, string(c.model))
		if err := c.save(dir); err != nil {
			t.Fatal(err)
		}
		rep, err := replay.VerifyAgainst(ctx, m.store, dir, c.model, tmp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("the %s after the load differs from a rebuild: %+v", c.model, rep)
		}
	}
}
