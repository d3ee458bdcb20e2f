package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// batchScript is a tenant's commands in an order that exercises the bulk path's dependencies:
// two-aggregate commands in runs (one atomic batch) and alone, a command on an aggregate right
// after another wrote it, decisions that read what an earlier command of the batch wrote (a role
// defined, then assigned; a record, then a link to it; a role deleted right after its holders
// lost it), and no-op commands.
func batchScript(n int) []aggregates.Command {
	a := aggregates.CommandBase{Actor: "ann"}
	pid := func(j int) string { return fmt.Sprintf("p%03d", j) }
	cmds := []aggregates.Command{
		&aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops",
			Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}},
		&aggregates.DefineUnit{CommandBase: a, Unit: events.UnitRef{Kind: aggregates.UnitLocation, ID: "east"}},
		&aggregates.DefineRole{CommandBase: a, Role: "auditor", Grants: []events.Grant{{Permission: "invoice.view", Scope: aggregates.ScopeAll}}},
	}
	for j := range n {
		cmds = append(cmds, &aggregates.RegisterPrincipal{CommandBase: a, Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@acme.test"})
	}
	for j := range n {
		lvl := aggregates.LevelLimited
		if j%5 == 0 {
			lvl = aggregates.LevelFull
		}
		cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: a, Principal: pid(j), Level: lvl})
		if j%4 == 0 { // right after its level, in the same batch: waits for the atomic batch
			cmds = append(cmds, &aggregates.AssignRole{CommandBase: a, Principal: pid(j), Role: "auditor"})
		}
	}
	for j := range n {
		cmds = append(cmds, &aggregates.AssignRole{CommandBase: a, Principal: pid(j), Role: "staff"})
		if j%3 == 0 { // changes nothing (and is decided anew when sent again: none is removed below)
			cmds = append(cmds, &aggregates.AssignRole{CommandBase: a, Principal: pid(j), Role: "staff"})
		}
	}
	for i := range 2 * n {
		r := events.RecordBody{Type: "case", ID: fmt.Sprintf("c%03d", i), Client: "c1",
			Assignees: []events.Assignee{{Principal: pid(i % n), Relation: events.DefaultRelation}}}
		cmds = append(cmds, &aggregates.RegisterRecord{CommandBase: a, RecordBody: r})
		inv := events.RecordBody{Type: "invoice", ID: fmt.Sprintf("i%03d", i), Links: []events.RecordRef{{Type: "case", ID: r.ID}}}
		cmds = append(cmds, &aggregates.RegisterRecord{CommandBase: a, RecordBody: inv})
		if i%3 == 0 {
			cmds = append(cmds, &aggregates.AssignRecord{CommandBase: a, Type: "invoice", ID: inv.ID, Principal: pid((i + 1) % n)})
		}
	}
	// DeleteRole asks the store who holds the role: the revocations and the removal just before
	// it, in flight or in an open atomic batch, must be stored by then.
	// (pid(4) is removed: it has no no-op command above, which would be refused when sent again.)
	for j := 0; j < n; j += 4 {
		if j != 4 {
			cmds = append(cmds, &aggregates.RevokeRole{CommandBase: a, Principal: pid(j), Role: "auditor"})
		}
	}
	cmds = append(cmds, &aggregates.RemovePrincipal{CommandBase: a, Principal: pid(4)},
		&aggregates.DeleteRole{CommandBase: a, Role: "auditor"})
	cmds = append(cmds, &aggregates.RemovePrincipal{CommandBase: a, Principal: pid(1)},
		&aggregates.SetAccessLevel{CommandBase: a, Principal: pid(2), Level: aggregates.LevelDisabled},
		&aggregates.AssignRole{CommandBase: a, Principal: pid(3), Role: "no-such-role"}) // refused: the batch stops
	for _, c := range cmds {
		c.Base().CommandID = uuid.NewString()
	}
	return cmds
}

func batchOf(t *testing.T, cmds []aggregates.Command) []BatchCommand {
	t.Helper()
	out := make([]BatchCommand, len(cmds))
	for i, c := range cmds {
		body, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = BatchCommand{Command: c.Name(), Body: body}
	}
	return out
}

// storedBySubject is every event of the stream, per subject: command, type and data.
func storedBySubject(t *testing.T, e *testEnv) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := e.Store.Read(e.ctx, 1, 0, func(ms []events.Message) error {
		for _, m := range ms {
			for _, ev := range m.Events {
				out[m.Subject] = append(out[m.Subject], ev.CommandID+" "+ev.Type+" "+string(ev.Data))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBatchAgreesWithCommandsSentAlone: the same commands, sent one by one on one server and in
// batches of 37 on another, store the same events on every subject and answer the same, the
// refusal that stops the batch included; sending the batches again stores nothing more. The
// batches are sent one at a time, and as one pipe all in flight at once, the last sent first.
func TestBatchAgreesWithCommandsSentAlone(t *testing.T) {
	t.Run("one at a time", func(t *testing.T) {
		testBatchAgrees(t, func(bulk *testEnv, parts [][]BatchCommand) ([][]BatchOutcome, []error) {
			outs, errs := make([][]BatchOutcome, len(parts)), make([]error, len(parts))
			for k, part := range parts {
				outs[k], errs[k] = bulk.c.Batch(bulk.ctx, "acme", part)
			}
			return outs, errs
		})
	})
	t.Run("pipe", func(t *testing.T) {
		testBatchAgrees(t, func(bulk *testEnv, parts [][]BatchCommand) ([][]BatchOutcome, []error) {
			return sendPipe(t, bulk, parts)
		})
	})
}

func testBatchAgrees(t *testing.T, sendParts func(*testEnv, [][]BatchCommand) ([][]BatchOutcome, []error)) {
	cmds := batchScript(40)
	alone := startEnv(t, 1)
	var aloneErr error
	for _, c := range cmds {
		if _, err := alone.c.Do(alone.ctx, "acme", c); err != nil {
			aloneErr = err
			break
		}
	}
	bulk := startEnv(t, 1)
	var parts [][]BatchCommand
	for start := 0; start < len(cmds); start += 37 {
		parts = append(parts, batchOf(t, cmds[start:min(start+37, len(cmds))]))
	}
	send := func() []BatchOutcome {
		outs, errs := sendParts(bulk, parts)
		var all []BatchOutcome
		for k := range parts {
			if errs[k] != nil {
				t.Fatalf("batch %d: %v", k+1, errs[k])
			}
			all = append(all, outs[k]...)
		}
		return all
	}
	first := send()
	if len(first) != len(cmds) {
		t.Fatalf("%d outcomes for %d commands", len(first), len(cmds))
	}
	for i, o := range first[:len(first)-1] {
		if o.Err != nil {
			t.Fatalf("command %d (%s): %v", i, cmds[i].Name(), o.Err)
		}
	}
	if last := first[len(first)-1].Err; aloneErr == nil || aggregates.ErrorCode(last) != aggregates.ErrorCode(aloneErr) {
		t.Fatalf("the last command answered %v in a batch, %v alone", last, aloneErr)
	}
	want, got := storedBySubject(t, alone), storedBySubject(t, bulk)
	for subject, evs := range want {
		if !slices.Equal(got[subject], evs) {
			t.Errorf("%s:\n batch %v\n alone %v", subject, got[subject], evs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d subjects written by batches, %d alone", len(got), len(want))
	}
	again := send() // every command that wrote answers as the first time, nothing is written
	if len(again) != len(first) {
		t.Fatalf("sent again: %d outcomes, the first time %d", len(again), len(first))
	}
	for i := range first[:len(first)-1] {
		if len(first[i].Result.Events) == 0 {
			continue // a command that changed nothing is not remembered: it is decided anew
		}
		if again[i].Err != nil || again[i].Result.Seq != first[i].Result.Seq || !slices.Equal(again[i].Result.Events, first[i].Result.Events) {
			t.Fatalf("command %d (%s) sent again answered %+v, first %+v", i, cmds[i].Name(), again[i], first[i])
		}
	}
	for subject, evs := range storedBySubject(t, bulk) {
		if !slices.Equal(evs, got[subject]) {
			t.Errorf("sending the batches again changed %s:\n %v\nwas\n %v", subject, evs, got[subject])
		}
	}
}

// TestBatchRacesWithOtherWriters: batches on two instances and single commands from other
// clients write the same principals and the tenant at once. Every command is stored exactly
// once, and the seat limit holds; with a large cache, and with a small one and the spill.
func TestBatchRacesWithOtherWriters(t *testing.T) {
	t.Run("cache", func(t *testing.T) { testBatchRaces(t, Options{}, false) })
	// With a cache of 8 states and the rest spilled: most decisions read the spill.
	t.Run("spill", func(t *testing.T) { testBatchRaces(t, Options{CacheSize: 8, StateDir: t.TempDir()}, false) })
	// Instances whose connections send them their own appends back, to be recognized.
	t.Run("echo", func(t *testing.T) { testBatchRaces(t, Options{}, true) })
}

func testBatchRaces(t *testing.T, opts Options, echo bool) {
	e := startEnvEcho(t, 2, opts, echo)
	const n = 60
	pid := racePrincipals(t, e, 31, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	full := 0
	errs := make(chan error, 100)
	for w := range 4 { // four batch writers, each its own principals' levels and roles
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cmds []aggregates.Command
			for j := w; j < n; j += 4 {
				b := aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}
				cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: b, Principal: pid(j), Level: aggregates.LevelFull},
					&aggregates.AssignRole{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}, Principal: pid(j), Role: "staff"})
			}
			out, err := e.c.Batch(e.ctx, "acme", batchOf(t, cmds))
			if err != nil {
				errs <- err
				return
			}
			for i, o := range out {
				switch {
				case o.Err == nil && cmds[i].Name() == "SetAccessLevel":
					mu.Lock()
					full++
					mu.Unlock()
				case o.Err != nil && aggregates.ErrorCode(o.Err) != aggregates.CodeSeatLimitReached:
					errs <- fmt.Errorf("%s: %w", cmds[i].Name(), o.Err)
				}
			}
		}()
	}
	for w := range 2 { // and single commands on the same principals
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < n; j += 2 {
				if _, err := e.c.GrantPermission(e.ctx, "acme", "ann", pid(j), events.Grant{Permission: "report.view", Scope: aggregates.ScopeAll}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var ae *aggregates.Error
		if !errors.As(err, &ae) || ae.Code != aggregates.CodeConflict {
			t.Error(err)
		}
	}
	// ann holds one full seat: 30 more were free.
	if full != 30 {
		t.Errorf("%d principals got a full seat, the subscription leaves 30", full)
	}
	storedOnce(t, e, nil)
}

// racePrincipals makes tenant acme with full seats for ann and n principals registered by
// one batch, and returns their names by index.
func racePrincipals(t *testing.T, e *testEnv, seats, n int) func(int) string {
	t.Helper()
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	e.must(aggregates.SystemActor, &aggregates.SetSubscription{Features: &[]string{}, Seats: map[string]int{aggregates.LevelFull: seats}})
	pid := func(j int) string { return fmt.Sprintf("p%03d", j) }
	var reg []aggregates.Command
	for j := range n {
		reg = append(reg, &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()},
			Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@acme.test"})
	}
	if out, err := e.c.Batch(e.ctx, "acme", batchOf(t, reg)); err != nil || len(out) != n {
		t.Fatalf("register: %v (%d outcomes)", err, len(out))
	}
	return pid
}

// storedOnce reads the whole stream, passing each message to each (when not nil), and fails
// the test for a command stored twice on a subject. It returns how many messages it read.
func storedOnce(t *testing.T, e *testEnv, each func(events.Message)) int {
	t.Helper()
	seen := map[string]int{}
	err := e.Store.Read(context.Background(), 1, 0, func(ms []events.Message) error {
		for _, m := range ms {
			seen[m.Events[0].CommandID+" "+m.Subject]++
			if each != nil {
				each(m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s stored %d times", k, c)
		}
	}
	return len(seen)
}

// TestBatchRefusesDryRun: a dry run inside a batch is refused (it would answer about the read
// model, not about its place in the batch) and stops the batch; nothing of it is written.
func TestBatchRefusesDryRun(t *testing.T) {
	e := startEnv(t, 1)
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	a := aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}
	dry := aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString(), DryRun: true}
	cmds := []aggregates.Command{
		&aggregates.RegisterPrincipal{CommandBase: a, Principal: "bob", Kind: aggregates.KindStaff, Email: "bob@acme.test"},
		&aggregates.AssignRole{CommandBase: dry, Principal: "bob", Role: "staff"},
		&aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}, Principal: "carl", Kind: aggregates.KindStaff},
	}
	out, err := e.c.Batch(e.ctx, "acme", batchOf(t, cmds))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Err != nil || aggregates.ErrorCode(out[1].Err) != aggregates.CodeInvalidArgument {
		t.Fatalf("outcomes %+v: want bob registered, then the dry run refused and the batch stopped", out)
	}
	for subject, evs := range storedBySubject(t, e) {
		if strings.Contains(subject, "carl") || (strings.Contains(subject, "bob") && len(evs) != 1) {
			t.Errorf("%s: %v", subject, evs)
		}
	}
}

// TestEncodeBatchAnswer: the answer joined by hand is byte for byte what json.Marshal gives,
// for accepted batches (results that are answers and errors, with characters Marshal escapes)
// and refused ones.
func TestEncodeBatchAnswer(t *testing.T) {
	refused := WireError{Code: aggregates.CodeInvalidArgument, Message: `a <batch> & "more"`}
	for _, a := range []BatchAnswer{
		{OK: true},
		{OK: true, Results: []json.RawMessage{encodeResult(Result{Seq: 7, Events: []string{"e1", "e2"}})}},
		{OK: true, Results: []json.RawMessage{
			encodeResult(Result{Seq: 1}),
			encodeResult(Result{Seq: 2, Events: []string{uuid.NewString()}}),
			encodeError(&aggregates.Error{Code: aggregates.CodeForbidden, Op: "AssignRole", Message: "ann <may not> & \u2028 \"assign\""}),
		}},
		{OK: true, Results: []json.RawMessage{encodeError(errors.New("not an aggregates error"))}},
		{Error: &refused},
	} {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeBatchAnswer(a); string(got) != string(want) {
			t.Errorf("encodeBatchAnswer:\n got %s\nwant %s", got, want)
		}
	}
}

// TestHashUnchanged: Hash gives the digest it always gave (sha256 of the name, a zero byte and
// json.Marshal of the command, in hex): stored command hashes must keep matching retries.
func TestHashUnchanged(t *testing.T) {
	odd := &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann"}, Principal: "p<1>",
		Kind: aggregates.KindStaff, Email: "<a&b>\u2028@x.test"} // what Marshal escapes
	for i, cmd := range append(batchScript(5), odd) {
		cmd.Base().CommandID = uuid.NewString()
		body, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(append(append([]byte(cmd.Name()), 0), body...))
		if got, want := Hash(cmd), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("command %d (%s): Hash %s; want %s", i, cmd.Name(), got, want)
		}
	}
}
