package commands

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestMovedCommandsAnswerRetries: a record written keptCommands+100 times keeps only its last
// keptCommands commands in its state, with the spill on, and still answers a retry of its
// oldest commands the same (seq and events), conflict for an old id with another body, and
// decides a new command as before: on the instance that wrote it, after a restart on the same
// spill, on a second instance with a spill of its own (built by its follower), on one without
// a spill (which keeps every command), and after the spill was turned off by an error (the
// stream answers). Without the bound the state holds every command.
func TestMovedCommandsAnswerRetries(t *testing.T) {
	e := startEnv(t, 0)
	start := func(opts Options) *Service {
		nc := e.Connect(t, e.Owner.Option())
		store, err := events.OpenStore(e.ctx, nc, events.StoreConfig{})
		if err != nil {
			t.Fatal(err)
		}
		opts.Follow = events.NewFanout(store)
		s := NewService(nc, store, opts)
		if err := s.Start(e.ctx); err != nil {
			t.Fatal(err)
		}
		if s.cache.spill != nil {
			eventstest.WaitFor(t, 30*time.Second, func() error {
				if !s.cache.spill.trusted.Load() {
					return errors.New("the follower has not reached the stream's end")
				}
				return nil
			})
		}
		return s
	}
	exec := func(s *Service, cmd aggregates.Command) (Result, error) {
		b := cmd.Base()
		b.Tenant, b.Actor = "acme", "admin"
		if b.CommandID == "" {
			b.CommandID = newID(t)
		}
		if _, ok := cmd.(*aggregates.CreateTenant); ok {
			b.Actor = aggregates.SystemActor
		}
		return s.Execute(e.ctx, cmd)
	}
	must := func(s *Service, cmd aggregates.Command) Result {
		t.Helper()
		res, err := exec(s, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	dir := t.TempDir()
	a := start(Options{CacheSize: 8, StateDir: dir})
	must(a, &aggregates.CreateTenant{Preset: "reconpro", Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@acme.test"}})
	must(a, &aggregates.RegisterPrincipal{Principal: "bob", Kind: aggregates.KindStaff, Email: "b@acme.test"})
	type sent struct {
		cmd aggregates.Command
		res Result
	}
	reg := &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "hot"}}
	done := []sent{{reg, must(a, reg)}}
	writes := keptCommands + 100
	for i := range writes {
		var cmd aggregates.Command = &aggregates.AssignRecord{Type: "repair_order", ID: "hot", Principal: "bob"}
		if i%2 == 1 {
			cmd = &aggregates.UnassignRecord{Type: "repair_order", ID: "hot", Principal: "bob"}
		}
		res := must(a, cmd)
		if len(res.Events) == 0 {
			t.Fatalf("write %d wrote nothing", i)
		}
		done = append(done, sent{cmd, res})
	}
	subject := events.Prefix + ".acme.record.repair_order.hot"
	kept := func(s *Service) *aggregates.Commands {
		t.Helper()
		en, err := s.cache.entry("acme", events.AggregateRef{Kind: events.KindRecord, Type: "repair_order", ID: "hot"})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := s.cache.fresh(e.ctx, en)
		if err != nil {
			t.Fatal(err)
		}
		return stateCommands(snap.state)
	}
	check := func(s *Service, name string) {
		t.Helper()
		// The oldest ones, one from the middle, the newest.
		for _, k := range []int{0, 1, 2, len(done) / 2, len(done) - 1} {
			res, err := exec(s, done[k].cmd)
			if err != nil || res.Seq != done[k].res.Seq || !slices.Equal(res.Events, done[k].res.Events) {
				t.Fatalf("%s: command %d sent again: %+v, %v; answered %+v the first time", name, k, res, err, done[k].res)
			}
		}
		// The first assignment's id with another body.
		first := done[1].cmd.(*aggregates.AssignRecord)
		other := &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{CommandID: first.CommandID},
			Type: "repair_order", ID: "hot", Principal: "admin"}
		if _, err := exec(s, other); !errors.Is(err, &aggregates.Error{Code: aggregates.CodeConflict}) {
			var ae *aggregates.Error
			if !errors.As(err, &ae) || ae.Code != aggregates.CodeConflict {
				t.Fatalf("%s: the oldest assignment's id with another body: %v, want conflict", name, err)
			}
		}
	}
	if c := kept(a); c.Len() > keptCommands+1 || c.Moved() == 0 {
		t.Fatalf("the hot record's state keeps %d commands and moved %d out; want at most %d kept", c.Len(), c.Moved(), keptCommands+1)
	}
	check(a, "the writer")
	a.Close()

	a = start(Options{CacheSize: 8, StateDir: dir})
	if st, err := a.cache.spill.get(subject); err != nil || st == nil {
		t.Fatalf("the hot record's spilled state after the restart: %v, %v", st, err)
	} else if c := stateCommands(st); c.Len() > keptCommands+1 || c.Moved() == 0 {
		t.Fatalf("the spilled state keeps %d commands and moved %d out", c.Len(), c.Moved())
	}
	check(a, "after a restart")
	// A new command is decided as before: bob is not assigned after the last write.
	assign := &aggregates.AssignRecord{Type: "repair_order", ID: "hot", Principal: "bob"}
	if res := must(a, assign); len(res.Events) == 0 {
		t.Fatal("a new assignment wrote nothing")
	} else {
		done = append(done, sent{assign, res})
	}

	b := start(Options{CacheSize: 8, StateDir: t.TempDir()})
	if c := kept(b); c.Len() > keptCommands+1 || c.Moved() == 0 {
		t.Fatalf("the second instance keeps %d commands and moved %d out", c.Len(), c.Moved())
	}
	check(b, "another instance")

	c := start(Options{CacheSize: 8})
	if n := kept(c).Len(); n != len(done) {
		t.Fatalf("without a spill the state keeps %d commands, want all %d", n, len(done))
	}
	check(c, "without a spill")

	// The spill turned off by an error: a state that moved commands out reads the stream.
	a.cache.mu.Lock()
	a.cache.spillErrLocked(errors.New("a test turned the spill off"))
	a.cache.mu.Unlock()
	check(a, "with the spill off")
	b.Close()
	c.Close()
	a.Close()
}
