package projections

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/prometheus/client_golang/prometheus"
)

// fixture is the whole read side on real parts: embedded NATS with the event store, a projector
// following it into Pebble, an engine, and the query server over HTTP (httptest) and NATS.
type fixture struct {
	env  *eventstest.Env
	ap   *appender
	g    *generator
	acme *genTenant
	db   *DB
	proj *Projector
	eng  *Engine
	srv  *Server
	http *httptest.Server
	reg  *prometheus.Registry
	last uint64
}

// newFixture starts the stack over a small Trackops tenant "acme": alice (staff, full,
// administrator), bob (staff, limited, role staff), carol (client contact of cl1, full, role
// client_contact); case c1 assigned to bob, invoice i1 of client cl1 linked to c1, client cl1.
func newFixture(t *testing.T, o ServerOptions) *fixture {
	t.Helper()
	f := &fixture{env: eventstest.Start(t), g: newGenerator(1), reg: prometheus.NewRegistry()}
	f.ap = newAppender(f.env.Store)
	f.acme = &genTenant{id: "acme", kinds: map[string]string{}, records: map[string][]string{}}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		t.Fatal(err)
	}
	f.g.emit(f.acme, events.TenantRef("acme"), preset)
	f.person("alice", aggregates.KindStaff, "", aggregates.LevelFull, "administrator")
	f.person("bob", aggregates.KindStaff, "", aggregates.LevelLimited, "staff")
	f.person("carol", aggregates.KindClientContact, "cl1", aggregates.LevelFull, "client_contact")
	f.record(events.RecordBody{Type: "client", ID: "cl1"})
	f.record(events.RecordBody{Type: "case", ID: "c1", Client: "cl1",
		Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}}})
	f.record(events.RecordBody{Type: "invoice", ID: "i1", Client: "cl1", Links: []events.RecordRef{{Type: "case", ID: "c1"}}})
	f.flush(t)

	f.db = openDB(t)
	f.proj = runProjector(t, f.db, f.env.Store)
	waitApplied(t, f.proj, f.last)
	f.eng = NewEngine(f.db, f.proj, EngineOptions{WaitBound: 200 * time.Millisecond})
	if o.Registerer == nil {
		o.Registerer = f.reg
	}
	f.srv = NewServer(f.eng, f.proj, o)
	f.http = httptest.NewServer(f.srv.Handler(f.reg))
	t.Cleanup(f.http.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.srv.ServeNATS(ctx, f.env.Conn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) person(id, kind, client, level, role string) {
	f.g.emit(f.acme, events.PrincipalRef(id), events.PrincipalRegisteredV1{Principal: id, Kind: kind,
		Email: id + "@acme.test", Client: client})
	f.g.emit(f.acme, events.PrincipalRef(id), events.AccessLevelSetV1{Level: level, From: aggregates.LevelDisabled},
		events.RoleAssignedV1{Role: role})
}

func (f *fixture) record(b events.RecordBody) {
	f.g.emit(f.acme, events.RecordAggregate(b.Type, b.ID), events.RecordRegisteredV1{RecordBody: b})
}

// flush appends what was emitted since the last flush and returns the last sequence.
func (f *fixture) flush(t *testing.T) uint64 {
	t.Helper()
	msgs := f.ap.add(t, f.g.items)
	f.g.items = nil
	if len(msgs) > 0 {
		f.last = msgs[len(msgs)-1].Seq
	}
	return f.last
}
