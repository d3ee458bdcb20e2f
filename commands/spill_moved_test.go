package commands

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

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
	start := func(opts Options) *Service { return startService(t, e, opts) }
	exec := func(s *Service, cmd aggregates.Command) (Result, error) { return execAdmin(t, e, s, cmd) }
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
	// Its id in upper case, which the service accepts and remembers as sent (not compact):
	// it must move out as the others do.
	reg := &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{CommandID: strings.ToUpper(newID(t))},
		RecordBody: events.RecordBody{Type: "repair_order", ID: "hot"}}
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
			sameAnswer(t, e, s, done[k].cmd, done[k].res, name)
		}
		// The first assignment's id with another body.
		first := done[1].cmd.(*aggregates.AssignRecord)
		_, err := exec(s, &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{CommandID: first.CommandID},
			Type: "repair_order", ID: "hot", Principal: "admin"})
		isConflict(t, err, name+": the oldest assignment's id with another body")
	}
	if c := kept(a); c.Len() > keptCommands || c.Moved() == 0 {
		t.Fatalf("the hot record's state keeps %d commands and moved %d out; want at most %d kept", c.Len(), c.Moved(), keptCommands)
	}
	check(a, "the writer")
	a.Close()

	a = start(Options{CacheSize: 8, StateDir: dir})
	if st, err := a.cache.spill.get(subject); err != nil || st == nil {
		t.Fatalf("the hot record's spilled state after the restart: %v, %v", st, err)
	} else if c := stateCommands(st); c.Len() > keptCommands || c.Moved() == 0 {
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
	if c := kept(b); c.Len() > keptCommands || c.Moved() == 0 {
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

// startService starts an instance on its own connection with opts, the spill following as in
// acld, and waits for its spill's follower to reach the stream's end; closed by t.Cleanup.
func startService(t *testing.T, e *testEnv, opts Options) *Service {
	t.Helper()
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
	t.Cleanup(s.Close)
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

// execAdmin carries out cmd on s in tenant acme as admin (system for CreateTenant), with a new
// command id unless it has one.
func execAdmin(t *testing.T, e *testEnv, s *Service, cmd aggregates.Command) (Result, error) {
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

// sameAnswer fails unless cmd, sent again to s, answers want.
func sameAnswer(t *testing.T, e *testEnv, s *Service, cmd aggregates.Command, want Result, what string) {
	t.Helper()
	res, err := execAdmin(t, e, s, cmd)
	if err != nil || res.Seq != want.Seq || !slices.Equal(res.Events, want.Events) {
		t.Fatalf("%s: %s sent again: %+v, %v; answered %+v the first time", what, cmd.Base().CommandID, res, err, want)
	}
}

// isConflict fails unless err is conflict.
func isConflict(t *testing.T, err error, what string) {
	t.Helper()
	var ae *aggregates.Error
	if !errors.As(err, &ae) || ae.Code != aggregates.CodeConflict {
		t.Fatalf("%s: %v, want conflict", what, err)
	}
}

// TestTenantMovedCommands: a tenant written by many access level changes keeps at most twice
// keptTenantCommands of them in its entry's index, the older ones in the spill, and still
// answers a retry of the oldest the same, conflict for its id with another body, on the
// instance that wrote it and after a restart; its snapshot holds every command (another
// instance starts from it and answers the same). Without the bound the index holds them all.
func TestTenantMovedCommands(t *testing.T) {
	defer func(k int) { keptTenantCommands = k }(keptTenantCommands)
	keptTenantCommands = 4
	e := startEnv(t, 0)
	dir := t.TempDir()
	a := startService(t, e, Options{StateDir: dir, SnapshotAfter: 10})
	must := func(s *Service, cmd aggregates.Command) Result {
		t.Helper()
		res, err := execAdmin(t, e, s, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	must(a, &aggregates.CreateTenant{Preset: "reconpro", Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@acme.test"}})
	type sent struct {
		cmd aggregates.Command
		res Result
	}
	var levels []sent
	for i := range 30 {
		p := fmt.Sprintf("p%d", i)
		must(a, &aggregates.RegisterPrincipal{Principal: p, Kind: aggregates.KindStaff, Email: p + "@acme.test"})
		cmd := &aggregates.SetAccessLevel{Principal: p, Level: aggregates.LevelFull}
		levels = append(levels, sent{cmd, must(a, cmd)})
	}
	ent, err := a.cache.entry("acme", events.TenantRef("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if held, moved := ent.cmds.lenHeld(), ent.cmds.moved; held > 2*keptTenantCommands || moved == 0 {
		t.Fatalf("the tenant's index holds %d commands and moved %d; want at most %d", held, moved, 2*keptTenantCommands)
	}
	want := e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	if got := tenantOf(t, e, a); !reflect.DeepEqual(got.Commands, want.Commands) {
		t.Fatalf("the tenant's commands with those moved out: %d, want %d", len(got.Commands), len(want.Commands))
	}
	check := func(s *Service, name string) {
		t.Helper()
		for _, k := range []int{0, 1, len(levels) - 1} {
			sameAnswer(t, e, s, levels[k].cmd, levels[k].res, name)
		}
		first := levels[0].cmd.(*aggregates.SetAccessLevel)
		_, err := execAdmin(t, e, s, &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{CommandID: first.CommandID},
			Principal: first.Principal, Level: aggregates.LevelLimited})
		isConflict(t, err, name+": the oldest level change's id with another body")
	}
	check(a, "the writer")
	a.Close() // waits for its snapshot writes
	snaps, err := e.Store.OpenSnapshots(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	subject := "acl.events.acme.tenant.acme"
	data, seq, err := snaps.Get(e.ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := maps.Clone(want.Commands)
	maps.DeleteFunc(wantAt, func(_ string, r aggregates.CommandResult) bool { return r.Seq > seq })
	if snap, err := decodeTenantSnapshot(data, subject, "acme", seq); err != nil || !reflect.DeepEqual(snap.Commands, wantAt) || len(wantAt) <= 2*keptTenantCommands {
		t.Fatalf("the snapshot at %d holds %d commands (%v), want every one up to it (%d)", seq, len(snap.Commands), err, len(wantAt))
	}

	// Both read the snapshot (and write none).
	a = startService(t, e, Options{StateDir: dir, SnapshotAfter: 1 << 30})
	check(a, "after a restart")
	b := startService(t, e, Options{StateDir: t.TempDir(), SnapshotAfter: 1 << 30})
	check(b, "another instance")
	if got := tenantOf(t, e, b); !reflect.DeepEqual(got.Commands, want.Commands) {
		t.Fatalf("another instance's tenant commands: %d, want %d", len(got.Commands), len(want.Commands))
	}
}

// TestSpillOffTenantRestoresCommands: once a tenant's index moved commands out and the spill
// is turned off by an error, the first id looked up reads the tenant's subject from the stream
// and puts every command back in memory: later level changes read nothing more (they read the
// whole history each, until a restart, before), old ids still answer the same, and a snapshot
// can be written again.
func TestSpillOffTenantRestoresCommands(t *testing.T) {
	defer func(k int) { keptTenantCommands = k }(keptTenantCommands)
	keptTenantCommands = 4
	e := startEnv(t, 0)
	a := startService(t, e, Options{StateDir: t.TempDir()})
	must := func(cmd aggregates.Command) Result {
		t.Helper()
		res, err := execAdmin(t, e, a, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
		return res
	}
	must(&aggregates.CreateTenant{Preset: "reconpro", Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@acme.test"}})
	first := &aggregates.SetAccessLevel{Principal: "p0", Level: aggregates.LevelFull}
	var firstRes Result
	for i := range 30 {
		p := fmt.Sprintf("p%d", i)
		must(&aggregates.RegisterPrincipal{Principal: p, Kind: aggregates.KindStaff, Email: p + "@acme.test"})
		if i == 0 {
			firstRes = must(first)
			continue
		}
		must(&aggregates.SetAccessLevel{Principal: p, Level: aggregates.LevelFull})
	}
	ent, err := a.cache.entry("acme", events.TenantRef("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if ent.cmds.moved == 0 {
		t.Fatal("the tenant's index moved nothing out")
	}
	a.cache.mu.Lock()
	a.cache.spillErrLocked(errors.New("a disk error, for the test"))
	a.cache.mu.Unlock()
	stream := a.metrics.loads.WithLabelValues("stream")
	count := func() float64 {
		var m dto.Metric
		if err := stream.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	before := count()
	for i := range 10 {
		must(&aggregates.SetAccessLevel{Principal: fmt.Sprintf("p%d", i+1), Level: aggregates.LevelLimited})
	}
	if n := count() - before; n > 1 {
		t.Fatalf("10 level changes with the spill off read the tenant's whole subject %v times, want at most once", n)
	}
	sameAnswer(t, e, a, first, firstRes, "the first level change, the spill off")
	cmds, err := ent.cmds.upTo(math.MaxUint64, nil, ent.subject)
	if err != nil || len(cmds) < 40 {
		t.Fatalf("a snapshot's commands with the spill off: %d, %v", len(cmds), err)
	}
}
