package commands

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestOtherInstanceWritesSeen: instance B revokes a role of many principals while instance A
// keeps reading them, so that A reloads each as B's invalidations arrive, some before the stream
// serves B's message. Once B's writes are acknowledged and A has taken their invalidations, A
// decides on B's state: every principal A reads is at the stream's state, and A assigning the
// revoked role writes it again instead of answering that the principal holds it.
func TestOtherInstanceWritesSeen(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"memory", Options{}},
		{"spill", Options{StateDir: "spill"}},
		// Entries dropped and made again while B writes: invalidations of subjects A does
		// not hold at that moment.
		{"evicting", Options{CacheSize: 40}},
		{"evicting spill", Options{CacheSize: 40, StateDir: "spill"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.opts.StateDir != "" {
				c.opts.StateDir = t.TempDir()
			}
			testOtherInstanceWritesSeen(t, c.opts)
		})
	}
}

func testOtherInstanceWritesSeen(t *testing.T, opts Options) {
	e := startEnvWith(t, 2, opts)
	a, b := e.svcs[0], e.svcs[1]
	// Every message is B's (A decides nothing until the end), so A gets each one's invalidation.
	exec := func(s *Service, actor string, cmd aggregates.Command) Result {
		t.Helper()
		cmd.Base().Tenant, cmd.Base().Actor, cmd.Base().CommandID = "acme", actor, newID(t)
		res, err := s.Execute(e.ctx, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	exec(b, aggregates.SystemActor, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	const n = 400
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%03d", i)
	}
	parallel := func(fn func(id string)) {
		var wg sync.WaitGroup
		next := make(chan string)
		for range 8 {
			wg.Go(func() {
				for id := range next {
					fn(id)
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
	}
	parallel(func(id string) {
		exec(b, "admin", &aggregates.RegisterPrincipal{Principal: id, Kind: aggregates.KindStaff})
		exec(b, "admin", &aggregates.AssignRole{Principal: id, Role: "accountant"})
	})
	read := func(ctx context.Context, id string) (*aggregates.Principal, error) {
		en, err := a.cache.entry("acme", events.PrincipalRef(id))
		if err != nil {
			return nil, err
		}
		s, err := a.cache.fresh(ctx, en)
		if err != nil {
			return nil, err
		}
		return s.state.(*aggregates.Principal), nil
	}
	for _, id := range ids {
		if _, err := read(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A's readers reload whatever was invalidated, as a busy instance's commands would.
	ctx, stop := context.WithCancel(e.ctx)
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for ctx.Err() == nil {
				if _, err := read(ctx, ids[rand.IntN(n)]); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	parallel(func(id string) {
		exec(b, "admin", &aggregates.RevokeRole{Principal: id, Role: "accountant"})
	})
	stop()
	readers.Wait()
	// Every message stored was published by B and comes to A as an invalidation.
	last := e.lastSeq()
	eventstest.WaitFor(t, 10*time.Second, func() error {
		if got := a.invalidated.Load(); got < int64(last) {
			return fmt.Errorf("A took %d invalidations of %d messages", got, last)
		}
		return nil
	})
	var behind []string
	for _, id := range ids {
		got, err := read(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := e.state(events.PrincipalRef(id)).(*aggregates.Principal)
		if got.Seq != want.Seq || slices.Contains(got.Roles, "accountant") {
			behind = append(behind, fmt.Sprintf("%s at %d, the stream at %d", id, got.Seq, want.Seq))
		}
	}
	var noops []string
	for _, id := range ids {
		if res := exec(a, "admin", &aggregates.AssignRole{Principal: id, Role: "accountant"}); len(res.Events) == 0 {
			noops = append(noops, id)
		}
	}
	if len(behind) > 0 || len(noops) > 0 {
		t.Fatalf("A's cache is behind B's acknowledged writes: %d principals (%v); A answered %d assignments of the revoked role without writing (%v)",
			len(behind), behind, len(noops), noops)
	}
}
