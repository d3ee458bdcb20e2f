package main

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

// demoExec gives one command to the server's command service as actor and returns its seq.
func demoExec(t testing.TB, m *Main, actor string, cmd aggregates.Command) uint64 {
	t.Helper()
	b := cmd.Base()
	b.CommandID, b.Actor, b.Tenant = uuid.NewString(), actor, DemoTenant
	r, err := m.cmds.Execute(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Name(), err)
	}
	return r.Seq
}

// reassignCase1 is the demo's audit story: ann takes case-1 from bob and gives it to sam. bob,
// at level limited, saw inv-1 only through the link rule invoice -> case (TO-4d), so he loses
// it with the UnassignRecord. It returns the sequence before the change, the unassignment's and
// the assignment's.
func reassignCase1(t testing.TB, m *Main) (before, unassigned, assigned uint64) {
	t.Helper()
	before = lastSeq(t, m)
	unassigned = demoExec(t, m, "ann", &aggregates.UnassignRecord{Type: "case", ID: "case-1", Principal: "bob", Relation: "assignee"})
	assigned = demoExec(t, m, "ann", &aggregates.AssignRecord{Type: "case", ID: "case-1", Principal: "sam", Relation: "assignee"})
	return before, unassigned, assigned
}

// TestDiffNamesRecords: on the demo tenant, the diff of bob across the reassignment of case-1
// names inv-1 (and case-1) as lost, gains nothing, and gives the UnassignRecord as the cause.
func TestDiffNamesRecords(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	waitReady(t, "http://"+m.HTTPAddr())
	before, unassigned, assigned := reassignCase1(t, m)
	ans, err := m.replay.Diff(context.Background(), DemoTenant, replay.DiffRequest{Principal: "bob",
		From: &replay.Moment{Seq: before}, To: &replay.Moment{Seq: assigned}, MinSeq: assigned})
	if err != nil {
		t.Fatal(err)
	}
	lost := map[string][]string{}
	for _, v := range ans.Visible {
		if len(v.Gained) != 0 || v.GainedCount != 0 || v.LostCount != len(v.Lost) || v.From-v.To != v.LostCount {
			t.Errorf("%s: %+v, want nothing gained and the lost ones counted", v.Type, v)
		}
		if len(v.Lost) > 0 {
			lost[v.Type] = v.Lost
		}
	}
	if !slices.Equal(lost["invoice"], []string{"inv-1"}) || !slices.Equal(lost["case"], []string{"case-1"}) || len(lost) != 2 {
		t.Errorf("lost %v, want invoice inv-1 and case case-1", lost)
	}
	if len(ans.Added)+len(ans.Removed) != 0 {
		t.Errorf("grants changed: added %v, removed %v", ans.Added, ans.Removed)
	}
	if len(ans.Events) != 1 || ans.Events[0].Seq != unassigned || ans.Events[0].Type != events.RecordUnassigned ||
		ans.Events[0].Why != "record:case/case-1" {
		t.Errorf("causes %+v, want the record_unassigned of case-1 at %d", ans.Events, unassigned)
	}
}
