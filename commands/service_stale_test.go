package commands

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// pauseInvalidations stops s's subscription to other instances' writes, as a backlog of
// invalidations under load leaves it behind the stream for a while: what it cached stays as it
// was read (s has no spill's follower to catch up with).
func pauseInvalidations(t *testing.T, s *Service) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.subs[0].Unsubscribe(); err != nil {
		t.Fatal(err)
	}
}

// staleCarl starts instances A and B, has B register carl with role accountant and A read carl,
// then pauses A's invalidations: what B writes next, A's cache does not learn of.
func staleCarl(t *testing.T) (e *testEnv, a, b *Service) {
	e = startEnv(t, 2)
	a, b = e.svcs[0], e.svcs[1]
	e.execAcme(t, b, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	e.execAcme(t, b, &aggregates.RegisterPrincipal{Principal: "carl", Kind: aggregates.KindStaff, Email: "carl@acme.test"})
	e.execAcme(t, b, &aggregates.AssignRole{Principal: "carl", Role: "accountant"})
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if p, fresh := e.readPrincipal(t, a, events.PrincipalRef("carl")); !fresh || !slices.Contains(p.Roles, "accountant") {
			return fmt.Errorf("A reads carl with roles %v (fresh: %v)", p.Roles, fresh)
		}
		return nil
	})
	pauseInvalidations(t, a)
	return e, a, b
}

// TestNoChangeCheckedAgainstTheStream: a command that changes nothing on the state an instance
// cached is answered only once that state is known to be its aggregate's last in the stream
// (execution.current). Instance A's invalidations lag (paused here) while B writes carl, then
// A decides on carl:
//   - a revocation of the role B just assigned revokes it (it answered ok without writing, and
//     carl kept the role: a revocation acknowledged after the assignment and undone by it);
//   - a retry of B's last assignment, which A's stale state already shows carl holding (B
//     revoked and assigned it again), answers what B stored (it answered no events, at A's
//     older sequence);
//   - the same in a batch, and as a lookup (it answered not_found: not stored on this server).
func TestNoChangeCheckedAgainstTheStream(t *testing.T) {
	t.Run("revocation after another instance's assignment", func(t *testing.T) {
		e, a, b := staleCarl(t)
		e.execAcme(t, b, &aggregates.AssignRole{Principal: "carl", Role: "work_manager"})
		if res := e.execAcme(t, a, &aggregates.RevokeRole{Principal: "carl", Role: "work_manager"}); len(res.Events) == 0 {
			t.Errorf("A answered the revocation with no events (seq %d)", res.Seq)
		}
		if p := e.state(events.PrincipalRef("carl")).(*aggregates.Principal); slices.Contains(p.Roles, "work_manager") {
			t.Errorf("carl holds %v after the acknowledged revocation", p.Roles)
		}
	})
	retry := func(t *testing.T, send func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error)) {
		e, a, b := staleCarl(t)
		e.execAcme(t, b, &aggregates.RevokeRole{Principal: "carl", Role: "accountant"})
		x := &aggregates.AssignRole{Principal: "carl", Role: "accountant"}
		first := e.execAcme(t, b, x)
		again, err := send(e, a, &aggregates.AssignRole{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: x.CommandID},
			Principal: "carl", Role: "accountant"})
		if err != nil || again.Seq != first.Seq || !slices.Equal(again.Events, first.Events) {
			t.Errorf("the retry on A answered %+v, %v; B stored %+v", again, err, first)
		}
	}
	t.Run("retry alone", func(t *testing.T) {
		retry(t, func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error) { return a.Execute(e.ctx, cmd) })
	})
	t.Run("retry in a batch", func(t *testing.T) { retry(t, batchOfOne) })
	t.Run("lookup", func(t *testing.T) {
		retry(t, func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error) { return a.Lookup(e.ctx, cmd) })
	})
}

// TestRetryReadsTheAggregateThatForgot: a retry of a command that wrote two aggregates (a seat
// change: the principal and the tenant) finds it in one and not in the other, whose state is
// behind the stream (its invalidation had not come when it was read, the other's had); it
// reads that one again instead of answering the one part (it answered the tenant's event and
// not the principal's), alone, in a batch, and as a lookup.
func TestRetryReadsTheAggregateThatForgot(t *testing.T) {
	for _, c := range []struct {
		name string
		send func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error)
	}{
		{"alone", func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error) { return a.Execute(e.ctx, cmd) }},
		{"in a batch", batchOfOne},
		{"lookup", func(e *testEnv, a *Service, cmd aggregates.Command) (Result, error) { return a.Lookup(e.ctx, cmd) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, a, b := staleCarl(t)
			tenant, err := events.Subject("acme", events.TenantRef("acme"))
			if err != nil {
				t.Fatal(err)
			}
			x := &aggregates.SetAccessLevel{Principal: "carl", Level: aggregates.LevelLimited}
			first := e.execAcme(t, b, x)
			if len(first.Events) != 2 {
				t.Fatalf("the seat change wrote %v", first.Events)
			}
			a.cache.invalidate(tenant, 0) // the tenant's invalidation came, carl's not yet
			again, err := c.send(e, a, &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: x.CommandID},
				Principal: "carl", Level: aggregates.LevelLimited})
			if err != nil || again.Seq != first.Seq || !slices.Equal(again.Events, first.Events) {
				t.Errorf("the retry on A answered %+v, %v; B stored %+v", again, err, first)
			}
		})
	}
}

// batchOfOne sends cmd to s as a batch of one command (on s itself, not the queue group) and
// returns its result.
func batchOfOne(e *testEnv, s *Service, cmd aggregates.Command) (Result, error) {
	body, err := json.Marshal(BatchRequest{Commands: batchOf(e.t.(*testing.T), []aggregates.Command{cmd})})
	if err != nil {
		return Result{}, err
	}
	ans := s.batchAnswer(e.ctx, &nats.Msg{Data: body}, "acme")
	if !ans.OK || len(ans.Results) != 1 {
		return Result{}, fmt.Errorf("batch answered %+v", ans)
	}
	var a answer
	if err := json.Unmarshal(ans.Results[0], &a); err != nil {
		return Result{}, err
	}
	if !a.OK {
		return Result{}, fmt.Errorf("batch answered %s", ans.Results[0])
	}
	return Result{Seq: a.Seq, Events: a.Events}, nil
}
