package aggregates

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

// decideWorld runs commands through Decide over Memory facts and applies what they write, as
// the command service does over its cache: the state of every test is built by commands only.
type decideWorld struct {
	tb  testing.TB
	m   *Memory
	seq uint64 // the stream's last sequence
	n   int    // command counter, for command ids
	now time.Time
}

const dwTenant = "acme"

func newDecideWorld(tb testing.TB) *decideWorld {
	return &decideWorld{tb: tb, m: NewMemory(dwTenant), now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// as sets the base of cmd: tenant acme, the actor and a fresh command id.
func (d *decideWorld) as(actor string, cmd Command) Command {
	d.n++
	b := cmd.Base()
	b.Tenant, b.Actor, b.CommandID = dwTenant, actor, fmt.Sprintf("cmd-%d", d.n)
	return cmd
}

// try decides cmd and, when it is accepted, appends its writes: each write must expect the
// aggregate's current sequence, as the store would insist.
func (d *decideWorld) try(actor string, cmd Command) ([]Write, error) {
	cmd = d.as(actor, cmd)
	ws, err := Decide(d.m, cmd, d.now)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			d.tb.Fatalf("%s: error %v is not an *Error", cmd.Name(), err)
		}
		if e.Message == "" || e.Op != cmd.Name() {
			d.tb.Fatalf("%s: error %#v lacks a message or names another op", cmd.Name(), e)
		}
		return nil, err
	}
	for _, w := range ws {
		if got := d.aggSeq(w.Aggregate); got != w.Expected {
			d.tb.Fatalf("%s: write to %v expects seq %d, the aggregate is at %d", cmd.Name(), w.Aggregate, w.Expected, got)
		}
		if len(w.Events) == 0 {
			continue
		}
		d.seq++
		for _, data := range w.Events {
			env, err := events.New(events.Meta{Tenant: dwTenant, Aggregate: w.Aggregate, Actor: actor,
				CommandID: cmd.Base().CommandID, Time: d.now}, data)
			if err != nil {
				d.tb.Fatal(err)
			}
			env.Seq = d.seq
			if err := d.m.Apply(env); err != nil {
				d.tb.Fatal(err)
			}
		}
	}
	return ws, nil
}

// must runs a command that has to be accepted.
func (d *decideWorld) must(actor string, cmd Command) []Write {
	d.tb.Helper()
	ws, err := d.try(actor, cmd)
	if err != nil {
		d.tb.Fatalf("%s by %s: %v", cmd.Name(), actor, err)
	}
	return ws
}

func (d *decideWorld) aggSeq(a events.AggregateRef) uint64 {
	switch a.Kind {
	case events.KindTenant:
		return d.m.T.Seq
	case events.KindPrincipal:
		if p := d.m.Principals[a.ID]; p != nil {
			return p.Seq
		}
	case events.KindRecord:
		if r := d.m.Records[events.RecordRef{Type: a.Type, ID: a.ID}]; r != nil {
			return r.Seq
		}
	}
	return 0
}

// person registers a principal with an email, its roles and a level (system acts).
func (d *decideWorld) person(id, kind, client, level string, roles []string, units ...events.UnitRef) {
	d.tb.Helper()
	d.must(SystemActor, &RegisterPrincipal{Principal: id, Kind: kind, Email: id + "@acme.test", Client: client, Units: units})
	for _, r := range roles {
		d.must(SystemActor, &AssignRole{Principal: id, Role: r})
	}
	if level != LevelDisabled {
		d.must(SystemActor, &SetAccessLevel{Principal: id, Level: level})
	}
}

func team(id string) events.UnitRef { return events.UnitRef{Kind: UnitTeam, ID: id} }

// reconproWorld: tenant acme with preset reconpro and feature technician_users off; teams t1
// and t2; admin (administrator, full); ta (team_administrator of t1, full); tl (team
// administrator of t1 at full_location); bob (staff of t1, accountant, full); carl (staff of t2,
// full); dora (staff of t1, registered without email, disabled); cc (client contact of client
// c1, full, role client); erin (staff of t1 with email, disabled); and a repair order ro-1 of team t1.
func reconproWorld(tb testing.TB) *decideWorld {
	d := newDecideWorld(tb)
	d.must(SystemActor, &CreateTenant{Preset: "reconpro", Admin: RegisterPrincipal{Principal: "admin", Kind: KindStaff, Email: "admin@acme.test"}})
	d.must("admin", &DefineUnit{Unit: team("t1")})
	d.must("admin", &DefineUnit{Unit: team("t2")})
	d.person("ta", KindStaff, "", LevelFull, []string{"team_administrator"}, team("t1"))
	d.person("tl", KindStaff, "", LevelFullLocation, []string{"team_administrator"}, team("t1"))
	d.person("bob", KindStaff, "", LevelFull, []string{"accountant"}, team("t1"))
	d.person("carl", KindStaff, "", LevelFull, nil, team("t2"))
	d.must(SystemActor, &RegisterPrincipal{Principal: "dora", Kind: KindStaff, Units: []events.UnitRef{team("t1")}})
	d.person("erin", KindStaff, "", LevelDisabled, nil, team("t1"))
	d.person("cc", KindClientContact, "c1", LevelFull, []string{"client"})
	d.must("admin", &RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{team("t1")}}})
	return d
}
