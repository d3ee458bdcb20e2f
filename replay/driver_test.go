package replay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// driver writes commands to a real event store as the command service does: it decides them
// with aggregates.Decide over the oracle's facts, appends their events (one message per
// aggregate, an atomic batch when a command writes several), then applies what was stored to
// the oracle. worlds[k] is the oracle after the k-th message: the truth that history, as_of and
// diff are compared with.
type driver struct {
	tb    testing.TB
	env   *eventstest.Env
	world aggregates.World
	seq   uint64
	n     int
	msgs  []events.Message // every message appended, in stream order (msgs[i].Seq == i+1)
	// after maps the last sequence of each command to a time taken after the store
	// acknowledged it and before the next command: a time whose as_of is that sequence.
	after map[uint64]time.Time
	// beforeAppend, when set, is given the events of each accepted command before they are
	// appended.
	beforeAppend func(envs []events.Envelope)
}

func newDriver(tb testing.TB, env *eventstest.Env) *driver {
	return &driver{tb: tb, env: env, world: aggregates.World{}, after: map[uint64]time.Time{}}
}

// try decides and appends cmd issued by actor in tenant; it returns the last sequence written
// (the current one when the command changed nothing).
func (d *driver) try(tenant, actor string, cmd aggregates.Command) (uint64, error) {
	d.n++
	b := cmd.Base()
	b.Tenant, b.Actor, b.CommandID = tenant, actor, fmt.Sprintf("00000000-0000-7000-8000-%012d", d.n)
	facts := d.world[tenant]
	if facts == nil {
		facts = aggregates.NewMemory(tenant)
	}
	now := time.Now().UTC()
	ws, err := aggregates.Decide(facts, cmd, now)
	if err != nil {
		return 0, err
	}
	var items []events.BatchItem
	for _, w := range ws {
		if len(w.Events) == 0 {
			continue
		}
		it := events.BatchItem{Expected: w.Expected, MsgID: b.CommandID + "/" + w.Aggregate.Kind + "/" + w.Aggregate.ID}
		for _, data := range w.Events {
			env, err := events.New(events.Meta{Tenant: tenant, Aggregate: w.Aggregate, Actor: actor,
				CommandID: b.CommandID, Time: now}, data)
			if err != nil {
				d.tb.Fatal(err)
			}
			it.Events = append(it.Events, env)
		}
		if it.Subject, err = events.Subject(tenant, w.Aggregate); err != nil {
			d.tb.Fatal(err)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return d.seq, nil
	}
	if d.beforeAppend != nil {
		var envs []events.Envelope
		for _, it := range items {
			envs = append(envs, it.Events...)
		}
		d.beforeAppend(envs)
	}
	ack, err := d.env.Store.AppendAtomic(context.Background(), items)
	if err != nil {
		d.tb.Fatalf("%s: append: %v", cmd.Name(), err)
	}
	if ack.Seq != d.seq+uint64(len(items)) {
		d.tb.Fatalf("%s: stored at %d, want %d (is someone else writing?)", cmd.Name(), ack.Seq, d.seq+uint64(len(items)))
	}
	for _, it := range items {
		d.seq++
		msg := events.Message{Seq: d.seq, Subject: it.Subject, Time: now, Events: it.Events}
		for i := range msg.Events {
			msg.Events[i].Seq = d.seq
			if err := d.world.Apply(msg.Events[i]); err != nil {
				d.tb.Fatal(err)
			}
		}
		d.msgs = append(d.msgs, msg)
	}
	d.after[d.seq] = time.Now()
	return d.seq, nil
}

// must is try for a command that has to be accepted.
func (d *driver) must(tenant, actor string, cmd aggregates.Command) uint64 {
	d.tb.Helper()
	seq, err := d.try(tenant, actor, cmd)
	if err != nil {
		d.tb.Fatalf("%s by %s: %v", cmd.Name(), actor, err)
	}
	return seq
}

// oracleAt rebuilds the oracle from the first seq messages.
func (d *driver) oracleAt(seq uint64) aggregates.World {
	w := aggregates.World{}
	for _, m := range d.msgs[:seq] {
		for _, e := range m.Events {
			if err := w.Apply(e); err != nil {
				d.tb.Fatal(err)
			}
		}
	}
	return w
}

// tenant creates a tenant of preset with administrator "admin" at level full.
func (d *driver) tenant(id, preset string) uint64 {
	return d.must(id, aggregates.SystemActor, &aggregates.CreateTenant{Preset: preset,
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@" + id + ".test"}})
}

// staff registers a staff member with an email, the roles and the level.
func (d *driver) staff(tenant, id, level string, roles ...string) uint64 {
	d.must(tenant, "admin", &aggregates.RegisterPrincipal{Principal: id, Kind: aggregates.KindStaff, Email: id + "@x.test"})
	for _, r := range roles {
		d.must(tenant, "admin", &aggregates.AssignRole{Principal: id, Role: r})
	}
	return d.must(tenant, "admin", &aggregates.SetAccessLevel{Principal: id, Level: level})
}

// lastOn is the sequence of the last message on subject.
func (d *driver) lastOn(subject string) uint64 {
	for i := len(d.msgs) - 1; i >= 0; i-- {
		if d.msgs[i].Subject == subject {
			return d.msgs[i].Seq
		}
	}
	d.tb.Fatalf("no message on %s", subject)
	return 0
}
