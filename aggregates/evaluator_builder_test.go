package aggregates

import (
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

// world builds a tenant's facts by applying real envelopes, as the projector would, so the
// evaluator is tested on states that Apply can produce.
type world struct {
	tb  testing.TB
	m   *Memory
	seq uint64
}

const testTenant = "acme"

func newWorld(tb testing.TB, preset string) *world {
	tb.Helper()
	w := &world{tb: tb, m: NewMemory(testTenant)}
	c, err := Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	w.tenant(c)
	return w
}

// emit applies one event and returns its id.
func (w *world) emit(agg events.AggregateRef, d events.Data) string {
	w.tb.Helper()
	w.seq++
	e, err := events.New(events.Meta{Tenant: testTenant, Aggregate: agg, Actor: SystemActor,
		CommandID: "cmd", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, d)
	if err != nil {
		w.tb.Fatal(err)
	}
	e.Seq = w.seq
	if err := w.m.Apply(e); err != nil {
		w.tb.Fatal(err)
	}
	return e.ID
}

func (w *world) tenant(d events.Data) string {
	return w.emit(events.AggregateRef{Kind: events.KindTenant, ID: testTenant}, d)
}

func (w *world) principal(id string, d events.Data) string {
	return w.emit(events.AggregateRef{Kind: events.KindPrincipal, ID: id}, d)
}

func (w *world) record(typ, id string, d events.Data) string {
	return w.emit(events.AggregateRef{Kind: events.KindRecord, Type: typ, ID: id}, d)
}

func (w *world) units(us ...events.UnitRef) {
	for _, u := range us {
		w.tenant(events.UnitDefinedV1{Unit: u})
	}
}

// person registers a principal with roles, a level and units.
func (w *world) person(id, kind, client, level string, roles []string, units ...events.UnitRef) {
	w.principal(id, events.PrincipalRegisteredV1{Principal: id, Kind: kind, Email: id + "@acme.test",
		Client: client, Units: units})
	for _, r := range roles {
		w.principal(id, events.RoleAssignedV1{Role: r})
	}
	if level != LevelDisabled {
		w.principal(id, events.AccessLevelSetV1{Level: level, From: LevelDisabled})
	}
}

// rec registers a record and returns its event id.
func (w *world) rec(b events.RecordBody) string {
	return w.record(b.Type, b.ID, events.RecordRegisteredV1{RecordBody: b})
}

func (w *world) check(principal, perm string, rec *events.RecordRef) Decision {
	w.tb.Helper()
	d, err := Check(w.m, principal, perm, rec)
	if err != nil {
		w.tb.Fatalf("Check(%s, %s, %v): %v", principal, perm, rec, err)
	}
	return d
}

func ref(typ, id string) *events.RecordRef { return &events.RecordRef{Type: typ, ID: id} }

func unit(kind, id string) events.UnitRef { return events.UnitRef{Kind: kind, ID: id} }

func as(principal string, relation ...string) []events.Assignee {
	rel := events.DefaultRelation
	if len(relation) > 0 {
		rel = relation[0]
	}
	return []events.Assignee{{Principal: principal, Relation: rel}}
}
