package commands

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
)

// TestBatchLookupWritesNothing: a batch of lookups answers each command as a retry would (the
// sequence and event ids stored the first time, a two-aggregate command's both parts), conflict
// for a stored id with another body, not_found for an id never stored and for a command that
// changed nothing (never remembered); it stores nothing, remembers nothing (the command looked up
// and not stored is carried out afterwards as new), and answers the same once the cache is
// dropped and the states come from the store. A lookup that asks to hold the read side is
// refused.
func TestBatchLookupWritesNothing(t *testing.T) {
	e := startEnv(t, 1)
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	base := func() aggregates.CommandBase {
		return aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}
	}
	register := &aggregates.RegisterPrincipal{CommandBase: base(), Principal: "bob", Kind: aggregates.KindStaff, Email: "bob@acme.test"}
	level := &aggregates.SetAccessLevel{CommandBase: base(), Principal: "bob", Level: aggregates.LevelLimited} // principal and seats
	assign := &aggregates.AssignRole{CommandBase: base(), Principal: "bob", Role: "staff"}
	noop := &aggregates.AssignRole{CommandBase: base(), Principal: "bob", Role: "staff"}
	stored := []Result{e.must("ann", register), e.must("ann", level), e.must("ann", assign)}
	if r := e.must("ann", noop); len(r.Events) != 0 {
		t.Fatalf("the second AssignRole wrote %v", r.Events)
	}
	if len(stored[1].Events) != 2 {
		t.Fatalf("SetAccessLevel wrote %v: want the principal's and the seats' events", stored[1].Events)
	}
	other := *register
	other.Email = "robert@acme.test" // the same id, another body
	email := "b@acme.test"
	never := &aggregates.SetEmail{CommandBase: base(), Principal: "bob", Email: &email}
	cmds := batchOf(t, []aggregates.Command{register, level, assign, &other, never, noop})
	last := e.lastSeq()

	for _, when := range []string{"cached", "after the cache is dropped"} {
		if when != "cached" {
			e.svcs[0].DropCache()
		}
		out, err := e.c.BatchLookup(e.ctx, "acme", cmds)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(out) != len(cmds) {
			t.Fatalf("%s: %d outcomes for %d lookups", when, len(out), len(cmds))
		}
		for i, want := range stored {
			got := out[i]
			if got.Err != nil || got.Result.Seq != want.Seq || !slices.Equal(got.Result.Events, want.Events) {
				t.Errorf("%s: lookup %d (%s) = %+v, %v; want the stored %+v", when, i, cmds[i].Command, got.Result, got.Err, want)
			}
		}
		if aggregates.ErrorCode(out[3].Err) != aggregates.CodeConflict {
			t.Errorf("%s: the id with another body: %v, want conflict", when, out[3].Err)
		}
		for _, i := range []int{4, 5} {
			if aggregates.ErrorCode(out[i].Err) != aggregates.CodeNotFound || !strings.Contains(out[i].Err.Error(), ErrNotStored) {
				t.Errorf("%s: lookup %d (never stored / changed nothing): %v, want not_found %q", when, i, out[i].Err, ErrNotStored)
			}
		}
		if got := e.lastSeq(); got != last {
			t.Fatalf("%s: the lookups moved the stream from %d to %d", when, last, got)
		}
	}
	if r := e.must("ann", never); len(r.Events) != 1 || r.Seq <= last {
		t.Errorf("the command looked up, then sent: %+v; want it carried out as new", r)
	}
	// bob has moved on since: a lookup still answers the sequence its command was stored at.
	if out, err := e.c.BatchLookup(e.ctx, "acme", cmds[:1]); err != nil || out[0].Err != nil || out[0].Result.Seq != stored[0].Seq {
		t.Errorf("lookup after bob moved on: %+v, %v; want seq %d", out, err, stored[0].Seq)
	}

	body, _ := json.Marshal(BatchRequest{Commands: cmds[:1], Lookup: true, Load: true})
	msg, err := e.nc.Request(BatchSubject("acme"), body, 10e9)
	if err != nil {
		t.Fatal(err)
	}
	var ans BatchAnswer
	if err := json.Unmarshal(msg.Data, &ans); err != nil || ans.OK || ans.Error == nil || ans.Error.Code != aggregates.CodeInvalidArgument {
		t.Errorf("a lookup with load: %s, want invalid_argument", msg.Data)
	}
}
