package commands

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// sendPipe sends the parts as the batches of one pipe, all at once and the last first, and
// returns each part's outcomes and error.
func sendPipe(t *testing.T, e *testEnv, parts [][]BatchCommand) ([][]BatchOutcome, []error) {
	t.Helper()
	name := uuid.NewString()
	outs, errs := make([][]BatchOutcome, len(parts)), make([]error, len(parts))
	var wg sync.WaitGroup
	for k := len(parts) - 1; k >= 0; k-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k], errs[k] = e.c.batch(e.ctx, "acme", BatchRequest{Commands: parts[k], Pipe: name, Seq: uint64(k + 1)})
		}()
	}
	wg.Wait()
	return outs, errs
}

// TestBatchPipeStopsAfterARefusal: a batch of a pipe that stops at a refused command makes the
// pipe's later batches refused whole, although they were in flight: nothing after the refused
// command is written, as when each batch waits for the answer to the one before.
func TestBatchPipeStopsAfterARefusal(t *testing.T) {
	e := startEnv(t, 1)
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	reg := func(p string) aggregates.Command {
		return &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()},
			Principal: p, Kind: aggregates.KindStaff, Email: p + "@acme.test"}
	}
	parts := [][]BatchCommand{
		batchOf(t, []aggregates.Command{reg("bob")}),
		batchOf(t, []aggregates.Command{reg("carl"),
			&aggregates.AssignRole{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}, Principal: "carl", Role: "no-such-role"},
			reg("dan")}),
		batchOf(t, []aggregates.Command{reg("eve")}),
		batchOf(t, []aggregates.Command{reg("fay")}),
	}
	outs, errs := sendPipe(t, e, parts)
	if errs[0] != nil || len(outs[0]) != 1 || outs[0][0].Err != nil {
		t.Fatalf("batch 1: %+v, %v", outs[0], errs[0])
	}
	if errs[1] != nil || len(outs[1]) != 2 || outs[1][0].Err != nil || aggregates.ErrorCode(outs[1][1].Err) != aggregates.CodeUnknownRole {
		t.Fatalf("batch 2: %+v, %v; want carl registered, then unknown_role", outs[1], errs[1])
	}
	for k := 2; k < 4; k++ {
		if aggregates.ErrorCode(errs[k]) != aggregates.CodeConflict || outs[k] != nil {
			t.Errorf("batch %d: %+v, %v; want refused whole (conflict)", k+1, outs[k], errs[k])
		}
	}
	for subject := range storedBySubject(t, e) {
		for _, p := range []string{"dan", "eve", "fay"} {
			if strings.HasSuffix(subject, "."+p) {
				t.Errorf("%s written after the refusal", subject)
			}
		}
	}
}

// TestBatchPipeRacesWithOtherWriters: one pipe's batches, all in flight, give principals their
// level and role, while single commands from other clients write the same principals and
// the tenant's seats (enough of them: a refusal would stop the pipe). Every command of both is
// stored exactly once (the pipe's lost races are carried out again alone, never dropped), and
// every level and grant is there.
func TestBatchPipeRacesWithOtherWriters(t *testing.T) {
	e := startEnv(t, 1)
	const n = 80
	pid := racePrincipals(t, e, 60, n)
	var cmds []aggregates.Command
	for j := range n {
		cmds = append(cmds, &aggregates.AssignRole{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}, Principal: pid(j), Role: "staff"})
		if j%2 == 0 {
			cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}, Principal: pid(j), Level: aggregates.LevelFull})
		}
	}
	var parts [][]BatchCommand
	for start := 0; start < len(cmds); start += 9 {
		parts = append(parts, batchOf(t, cmds[start:min(start+9, len(cmds))]))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < n; j += 2 {
				_, err := e.c.GrantPermission(e.ctx, "acme", "ann", pid(j), events.Grant{Permission: "report.view", Scope: aggregates.ScopeAll})
				if err == nil && j%5 == 0 {
					_, err = e.c.SetAccessLevel(e.ctx, "acme", "ann", pid(j), aggregates.LevelFull)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	outs, perrs := sendPipe(t, e, parts)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("single command: %v", err)
	}
	k := 0
	for p := range parts {
		if perrs[p] != nil {
			t.Fatalf("batch %d: %v", p+1, perrs[p])
		}
		for _, o := range outs[p] {
			if o.Err != nil {
				t.Errorf("%s: %v", cmds[k].Name(), o.Err)
			}
			k++
		}
	}
	if k != len(cmds) {
		t.Fatalf("%d outcomes for %d commands", k, len(cmds))
	}
	full, grants := map[string]bool{}, 0
	storedOnce(t, e, func(m events.Message) {
		for _, ev := range m.Events {
			if ev.Type == events.AccessLevelSet && strings.Contains(string(ev.Data), `"full"`) {
				full[m.Subject] = true
			}
			if ev.Type == events.PermissionGranted {
				grants++
			}
		}
	})
	if len(full) != n/2+n/10+1 { // ann, the even ones by the pipe, the odd multiples of 5 alone
		t.Errorf("%d principals got a full seat, want %d", len(full), n/2+n/10+1)
	}
	if grants != n {
		t.Errorf("%d grants stored, %d sent", grants, n)
	}
}

// TestPipeWaitsForItsTurn: the order of a pipe's batches without a server. A batch waits while
// the one before decides however long it takes, goes when its turn comes, and is refused as
// unavailable when the one before has not come within pipeGap; a batch of a pipe whose first
// batch never came is refused with PipeElsewhere; after a stop, later batches are refused.
func TestPipeWaitsForItsTurn(t *testing.T) {
	old := pipeGap
	pipeGap = 50 * time.Millisecond
	t.Cleanup(func() { pipeGap = old })
	ctx := context.Background()
	var ps pipes
	if _, err := ps.get(ctx, "acme", "elsewhere", 2); err == nil || !strings.Contains(err.Error(), PipeElsewhere) ||
		aggregates.ErrorCode(err) != aggregates.CodeUnavailable {
		t.Fatalf("batch 2 of an unknown pipe: %v", err)
	}
	p, err := ps.get(ctx, "acme", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.enter(ctx, 1); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		p2, err := ps.get(ctx, "acme", "a", 2)
		if err == nil {
			_, err = p2.enter(ctx, 2)
		}
		second <- err
	}()
	select { // batch 1 decides for four gaps: batch 2 waits
	case err := <-second:
		t.Fatalf("batch 2 went while batch 1 decided: %v", err)
	case <-time.After(4 * pipeGap):
	}
	r1 := &batchRun{done: make(chan struct{})}
	p.handOff(1, r1, false)
	if err := <-second; err != nil {
		t.Fatalf("batch 2 after batch 1 handed off: %v", err)
	}
	p.handOff(2, &batchRun{}, false)
	if _, err := p.enter(ctx, 4); aggregates.ErrorCode(err) != aggregates.CodeUnavailable {
		t.Fatalf("batch 4 without batch 3: %v", err)
	}
	tails, err := p.enter(ctx, 3)
	if err != nil || len(tails) != 2 || tails[0] != r1 {
		t.Fatalf("batch 3: %v, tails %v", err, tails)
	}
	p.finished(1, r1, true) // batch 1 had a late refusal: the pipe stops there
	p.handOff(3, &batchRun{}, false)
	if _, err := p.enter(ctx, 4); aggregates.ErrorCode(err) != aggregates.CodeConflict {
		t.Fatalf("batch 4 after the stop: %v", err)
	}
}

// TestBatchOfMaxBatch: one request of MaxBatch commands, 1000 of them writing two aggregates
// (more than one atomic batch of JetStream's 1000 messages holds), is carried out whole; each
// command is stored once, and one more command is refused.
func TestBatchOfMaxBatch(t *testing.T) {
	e := startEnv(t, 1)
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	n := MaxBatch / 3
	a := func() aggregates.CommandBase {
		return aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()}
	}
	pid := func(j int) string { return fmt.Sprintf("p%05d", j) }
	var cmds []aggregates.Command
	for j := range n {
		cmds = append(cmds, &aggregates.RegisterPrincipal{CommandBase: a(), Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@acme.test"})
	}
	for j := range n {
		cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: a(), Principal: pid(j), Level: aggregates.LevelLimited},
			&aggregates.AssignRole{CommandBase: a(), Principal: pid(j), Role: "staff"})
	}
	if _, err := e.c.Batch(e.ctx, "acme", batchOf(t, append(slices.Clone(cmds), cmds[0]))); aggregates.ErrorCode(err) != aggregates.CodeInvalidArgument {
		t.Fatalf("a batch of %d commands: %v, want invalid_argument", len(cmds)+1, err)
	}
	out, err := e.c.Batch(e.ctx, "acme", batchOf(t, cmds))
	if err != nil || len(out) != len(cmds) {
		t.Fatalf("%v, %d outcomes for %d commands", err, len(out), len(cmds))
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("command %d (%s): %v", i, cmds[i].Name(), o.Err)
		}
	}
	if got, want := storedOnce(t, e, nil), 2+n+2*n+n; got != want { // the tenant and its admin; then per principal: register, level (two subjects), role
		t.Errorf("%d messages stored, want %d", got, want)
	}
}

// TestPipelineOfSeveralTenants: a sender's pipeline numbers its batches per tenant, since the
// service keeps a pipe per tenant: an import of several tenants' commands goes on pipelined
// instead of waiting for a batch 1 of the second tenant that never comes and being refused.
func TestPipelineOfSeveralTenants(t *testing.T) {
	e := startEnv(t, 1)
	tenants := []string{"acme", "beta"}
	for _, tenant := range tenants {
		create := &aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops",
			Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@" + tenant + ".test"}}
		if _, err := e.c.Do(e.ctx, tenant, create); err != nil {
			t.Fatal(err)
		}
	}
	p := e.c.Pipeline(false)
	var pending []*PendingBatch
	for k := range 6 {
		reg := &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()},
			Principal: fmt.Sprint("p", k), Kind: aggregates.KindStaff, Email: fmt.Sprint("p", k, "@example.test")}
		pending = append(pending, p.Send(e.ctx, tenants[k%2], batchOf(t, []aggregates.Command{reg})))
	}
	for k, pb := range pending {
		if out, err := pb.Wait(); err != nil || len(out) != 1 || out[0].Err != nil {
			t.Fatalf("batch %d to %s: %+v, %v", k+1, tenants[k%2], out, err)
		}
	}
}

// TestPipeFreesAnsweredBatches: a batch of a pipe that has been answered is garbage once the
// pipe's later batches have decided, although each of them waited for the one before. Before,
// every batch kept the one before it (and so the whole pipe) reachable from the newest batch:
// an import held every command's envelopes, messages and states on the heap until its end.
func TestPipeFreesAnsweredBatches(t *testing.T) {
	e := startEnv(t, 1)
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}})
	const batches, each = 8, 300
	var (
		mu      sync.Mutex
		runs    = map[uint64]weak.Pointer[batchRun]{}
		last    *batchRun // what a later batch of the pipe would hold
		overlap = map[uint64]bool{}
	)
	pipeEntered = func(seq uint64, r *batchRun) {
		mu.Lock()
		defer mu.Unlock()
		runs[seq] = weak.Make(r)
		overlap[seq] = len(r.earlier) > 0
		if seq == batches {
			last = r
		}
	}
	t.Cleanup(func() { pipeEntered = nil })
	parts := make([][]BatchCommand, batches)
	for k := range parts {
		var cmds []aggregates.Command
		for j := range each {
			p := fmt.Sprintf("p%d-%d", k, j)
			cmds = append(cmds, &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "ann", CommandID: uuid.NewString()},
				Principal: p, Kind: aggregates.KindStaff, Email: p + "@acme.test"})
		}
		parts[k] = batchOf(t, cmds)
	}
	// All in flight at once: each decides while the one before still takes its answers.
	if _, errs := sendPipe(t, e, parts); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	mu.Lock()
	defer mu.Unlock()
	if !overlap[batches] || !overlap[batches-1] {
		t.Skipf("the last batches did not overlap the ones before (%v): nothing to check", overlap)
	}
	runtime.GC()
	runtime.GC()
	for seq := uint64(1); seq < batches; seq++ {
		if runs[seq].Value() != nil {
			t.Errorf("batch %d of %d is still reachable once answered", seq, batches)
		}
	}
	runtime.KeepAlive(last)
}
