package commands

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestCreateOnColdCache: an instance that never read an aggregate assumes it is empty when a
// command creates it; when it exists, the store refuses the append and the command is decided
// again on what the store has.
func TestCreateOnColdCache(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	cold := e.addService(t, Options{})
	cases := []struct {
		name string
		cmd  aggregates.Command
		code aggregates.Code
	}{
		{"existing record", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1"}}, aggregates.CodeAlreadyExists},
		{"existing principal", &aggregates.RegisterPrincipal{Principal: "bob", Kind: aggregates.KindStaff}, aggregates.CodeAlreadyExists},
		{"existing tenant", &aggregates.CreateTenant{Preset: "empty", Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@b.c"}}, aggregates.CodeAlreadyExists},
		{"new record", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-2"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.cmd.Base()
			b.Tenant, b.CommandID, b.Actor = "acme", newID(t), "admin"
			if _, ok := c.cmd.(*aggregates.CreateTenant); ok {
				b.Actor = aggregates.SystemActor
			}
			before := e.lastSeq()
			_, err := cold.Execute(e.ctx, c.cmd)
			if got := map[bool]aggregates.Code{true: "", false: aggregates.ErrorCode(err)}[err == nil]; got != c.code {
				t.Fatalf("got %v, want %q", err, c.code)
			}
			if c.code != "" && e.lastSeq() != before {
				t.Fatal("a refused command wrote")
			}
		})
	}
}

// TestMetrics: answers are counted by command and code, on the registry of Options.
func TestMetrics(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	count := func(command, code string) float64 {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "acl_commands_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["command"] == command && labels["code"] == code {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	cases := []struct {
		command, code string
		send          func()
	}{
		{"AssignRole", "ok", func() { e.must("admin", &aggregates.AssignRole{Principal: "carl", Role: "accountant"}) }},
		{"AssignRole", "unknown_role", func() { e.try("admin", &aggregates.AssignRole{Principal: "bob", Role: "wizard"}) }},
		{"unknown", "invalid_argument", func() { e.raw("acl.commands.acme.Nope", `{}`) }},
	}
	for _, c := range cases {
		t.Run(c.command+"/"+c.code, func(t *testing.T) {
			before := count(c.command, c.code)
			c.send()
			if got := count(c.command, c.code); got != before+1 {
				t.Fatalf("acl_commands_total{command=%q,code=%q} went from %v to %v", c.command, c.code, before, got)
			}
		})
	}
}

// TestRetryAfterDropAnswersWhole: a two-aggregate command sent again after the cache dropped
// one of its aggregates answers what it answered first, alone and in a batch, with and without
// the spill. (The dropped aggregate was assumed empty, as for a first creation, and the answer
// missed its part.)
func TestRetryAfterDropAnswersWhole(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{{"cache", Options{CacheSize: 4}}, {"spill", Options{CacheSize: 4, StateDir: t.TempDir()}}} {
		t.Run(c.name, func(t *testing.T) {
			e := startEnvWith(t, 1, c.opts)
			create := &aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor, CommandID: newID(t)},
				Preset: "trackops", Admin: aggregates.RegisterPrincipal{Principal: "ann", Kind: aggregates.KindStaff, Email: "ann@acme.test"}}
			first, err := e.c.Do(e.ctx, "acme", create)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 { // the admin's state leaves the cache
				e.must(aggregates.SystemActor, &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: fmt.Sprintf("c%d", i)}})
			}
			again, err := e.c.Do(e.ctx, "acme", create)
			if err != nil || again.Seq != first.Seq || !slices.Equal(again.Events, first.Events) {
				t.Fatalf("sent again: %+v, %v; first %+v", again, err, first)
			}
			for i := range 20 {
				e.must(aggregates.SystemActor, &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: fmt.Sprintf("d%d", i)}})
			}
			body, err := json.Marshal(create)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.c.Batch(e.ctx, "acme", []BatchCommand{{Command: create.Name(), Body: body}})
			if err != nil || len(out) != 1 || out[0].Err != nil || out[0].Result.Seq != first.Seq || !slices.Equal(out[0].Result.Events, first.Events) {
				t.Fatalf("sent again in a batch: %+v, %v; first %+v", out, err, first)
			}
		})
	}
}

// TestOwnAppendsNotEchoed: an instance on a connection without echo (acld's) is not sent its
// own appends, alone or in a batch, and keeps no ids to recognize them; another instance's
// append to the same aggregate still reaches it and makes its cached state stale, and its next
// command decides on that append.
func TestOwnAppendsNotEchoed(t *testing.T) {
	e := startEnv(t, 1)
	a := e.svcs[0]
	if a.echo {
		t.Fatal("an instance on a connection made with nats.NoEcho records its own appends")
	}
	e.reconpro()
	cmd := func(id string) aggregates.Command {
		return &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: newID(t)},
			RecordBody: events.RecordBody{Type: "repair_order", ID: id}}
	}
	if _, err := a.Execute(e.ctx, cmd("ro-n1")); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(cmd("ro-n2"))
	if out, err := e.c.Batch(e.ctx, "acme", []BatchCommand{{Command: "RegisterRecord", Body: body}}); err != nil || out[0].Err != nil {
		t.Fatalf("batch: %v %v", err, out)
	}
	ref := events.RecordAggregate("repair_order", "ro-n1")
	entry, err := a.cache.entry("acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	gen := entry.gen.Load()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	inv := a.subs[0]
	a.mu.Unlock()
	if n, err := inv.Delivered(); err != nil || n != 0 {
		t.Fatalf("the invalidation subscription got %d messages (%v): the instance's own appends", n, err)
	}
	a.own.mu.Lock()
	kept := len(a.own.ids)
	a.own.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d own message ids kept", kept)
	}
	b := e.addService(t, Options{})
	if _, err := b.Execute(e.ctx, &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: newID(t)},
		Type: "repair_order", ID: "ro-n1", Principal: "bob"}); err != nil {
		t.Fatal(err)
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if entry.gen.Load() == gen {
			return fmt.Errorf("the other instance's append did not make the cached state stale")
		}
		return nil
	})
	if got, err := inv.Delivered(); err != nil || got != 1 {
		t.Fatalf("invalidations delivered: %d (%v); want the other instance's one", got, err)
	}
	// Decided on the other instance's append: bob is an assignee already, so nothing is written.
	res, err := a.Execute(e.ctx, &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: newID(t)},
		Type: "repair_order", ID: "ro-n1", Principal: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 0 {
		t.Fatalf("assigned bob again: %v", res.Events)
	}
}

// TestDropCache: after DropCache (an idle acld's) the cache holds the tenants alone, and the
// next commands decide as before on the states they read again, with and without the spill: a
// record that exists is refused, a command sent again answers its first answer and writes
// nothing, a new grant is applied on the principal's whole state.
func TestDropCache(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{{"cache", Options{}}, {"spill", Options{StateDir: t.TempDir()}}} {
		t.Run(c.name, func(t *testing.T) {
			e := startEnvWith(t, 1, c.opts)
			e.reconpro()
			s := e.svcs[0]
			create := &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: newID(t)},
				RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-2", Units: []events.UnitRef{team("t1")}}}
			first, err := e.c.Do(e.ctx, "acme", create)
			if err != nil {
				t.Fatal(err)
			}
			s.cache.mu.Lock()
			before := len(s.cache.entries)
			s.cache.mu.Unlock()
			s.DropCache()
			s.cache.mu.Lock()
			after := len(s.cache.entries)
			for _, en := range s.cache.entries {
				if en.ref.Kind != events.KindTenant {
					t.Errorf("kept %s", en.subject)
				}
			}
			s.cache.mu.Unlock()
			if after != 1 || before <= after {
				t.Fatalf("entries %d before the drop, %d after: want the tenant's alone", before, after)
			}
			seq := e.lastSeq()
			again, err := e.c.Do(e.ctx, "acme", create)
			if err != nil || again.Seq != first.Seq || !slices.Equal(again.Events, first.Events) || e.lastSeq() != seq {
				t.Fatalf("sent again after the drop: %+v, %v; first %+v", again, err, first)
			}
			if code := e.try("admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1"}}); code != aggregates.CodeAlreadyExists {
				t.Fatalf("an existing record registered again after the drop: %q", code)
			}
			e.must("admin", &aggregates.AssignRole{Principal: "carl", Role: "accountant"})
			want := e.state(events.PrincipalRef("carl")).(*aggregates.Principal)
			s.DropCache()
			en, err := s.cache.entry("acme", events.PrincipalRef("carl"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.cache.fresh(e.ctx, en)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.state.(*aggregates.Principal); !slices.Equal(g.Roles, want.Roles) || g.Level != want.Level || !slices.Equal(g.Roles, []string{"accountant"}) {
				t.Fatalf("carl read after the drop: roles %v level %q, the store's %v %q", g.Roles, g.Level, want.Roles, want.Level)
			}
		})
	}
}
