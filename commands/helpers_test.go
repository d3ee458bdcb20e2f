package commands

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// testEnv is a real embedded NATS server with JetStream, the event store, command service
// instances (each on its own connection, all in queue group acld) and a client.
type testEnv struct {
	*eventstest.Env
	t     testing.TB
	ctx   context.Context
	svcs  []*Service
	c     *Client
	nc    *nats.Conn // the client's connection
	reg   *prometheus.Registry
	limit time.Duration
	// echo: instances connect without nats.NoEcho (acld's connection has it), so they get their
	// own appends back and must recognize them.
	echo bool
}

// startEnv starts the server and n service instances with default options.
func startEnv(t testing.TB, n int) *testEnv { return startEnvWith(t, n, Options{}) }

// startEnvWith starts the server and n service instances with opts (metrics go to the env's
// registry).
func startEnvWith(t testing.TB, n int, opts Options) *testEnv {
	t.Helper()
	return startEnvEcho(t, n, opts, false)
}

// startEnvEcho is startEnvWith with instances whose connections get their own appends back
// (echo) or not.
func startEnvEcho(t testing.TB, n int, opts Options, echo bool) *testEnv {
	t.Helper()
	e := &testEnv{Env: eventstest.Start(t), t: t, reg: prometheus.NewRegistry(), echo: echo}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	for range n {
		e.addService(t, opts)
	}
	e.nc = e.Connect(t)
	e.c = NewClient(e.nc)
	return e
}

// addService starts one more instance on its own connection (the store owner's, without echo
// unless e.echo, as acld's);
// it is closed by t.Cleanup.
func (e *testEnv) addService(t testing.TB, opts Options) *Service {
	t.Helper()
	connOpts := []nats.Option{e.Owner.Option()}
	if !e.echo {
		connOpts = append(connOpts, nats.NoEcho()) // as acld's
	}
	nc := e.Connect(t, connOpts...)
	store, err := events.OpenStore(e.ctx, nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Registerer = e.reg
	if opts.StateDir != "" { // one directory per instance
		opts.StateDir = filepath.Join(opts.StateDir, strconv.Itoa(len(e.svcs)))
		if opts.Follow == nil {
			opts.Follow = events.NewFanout(store) // the spill follows as in acld
		}
	}
	s := NewService(nc, store, opts)
	if err := s.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e.svcs = append(e.svcs, s)
	return s
}

// must sends a command that has to be accepted.
func (e *testEnv) must(actor string, cmd aggregates.Command) Result {
	e.t.Helper()
	cmd.Base().Actor = actor
	res, err := e.c.Do(e.ctx, "acme", cmd)
	if err != nil {
		e.t.Fatalf("%s by %s: %v", cmd.Name(), actor, err)
	}
	return res
}

// try sends a command and returns its error code ("" when accepted).
func (e *testEnv) try(actor string, cmd aggregates.Command) aggregates.Code {
	e.t.Helper()
	cmd.Base().Actor = actor
	_, err := e.c.Do(e.ctx, "acme", cmd)
	if err == nil {
		return ""
	}
	var ae *aggregates.Error
	if !errors.As(err, &ae) {
		e.t.Fatalf("%s: %v is not an *aggregates.Error", cmd.Name(), err)
	}
	return ae.Code
}

// raw sends a body on a subject and decodes the answer as a client of another language would.
func (e *testEnv) raw(subject, body string) answer {
	e.t.Helper()
	body = strings.ReplaceAll(body, "CID", uuid.NewString())
	msg, err := e.nc.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		e.t.Fatalf("request %s: %v", subject, err)
	}
	var a answer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		e.t.Fatalf("answer %s: %v", msg.Data, err)
	}
	return a
}

func (e *testEnv) lastSeq() uint64 {
	e.t.Helper()
	seq, err := e.Store.LastSeq(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// state reads an aggregate's state straight from the store (not through any cache).
func (e *testEnv) state(ref events.AggregateRef) any {
	e.t.Helper()
	subject, err := events.Subject("acme", ref)
	if err != nil {
		e.t.Fatal(err)
	}
	msgs, err := e.Store.Load(e.ctx, subject, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	st := newState(ref)
	for _, m := range msgs {
		for _, env := range m.Events {
			if err := applyEnvelope(st, env); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	return st
}

func team(id string) events.UnitRef { return events.UnitRef{Kind: aggregates.UnitTeam, ID: id} }

// person registers a principal with an email, roles and a level (actor system).
func (e *testEnv) person(id, kind, client, level string, roles []string, units ...events.UnitRef) {
	e.t.Helper()
	e.must(aggregates.SystemActor, &aggregates.RegisterPrincipal{Principal: id, Kind: kind, Email: id + "@acme.test", Client: client, Units: units})
	for _, r := range roles {
		e.must(aggregates.SystemActor, &aggregates.AssignRole{Principal: id, Role: r})
	}
	if level != aggregates.LevelDisabled {
		e.must(aggregates.SystemActor, &aggregates.SetAccessLevel{Principal: id, Level: level})
	}
}

// reconpro creates tenant acme (preset reconpro) with teams t1, t2 and: admin (administrator),
// ta (team_administrator of t1), bob (accountant, t1), carl (t2), all full; erin (t1, email,
// disabled); dora (t1, no email, disabled); repair order ro-1 of t1.
func (e *testEnv) reconpro() {
	e.t.Helper()
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	e.must("admin", &aggregates.DefineUnit{Unit: team("t1")})
	e.must("admin", &aggregates.DefineUnit{Unit: team("t2")})
	e.person("ta", aggregates.KindStaff, "", aggregates.LevelFull, []string{"team_administrator"}, team("t1"))
	e.person("bob", aggregates.KindStaff, "", aggregates.LevelFull, []string{"accountant"}, team("t1"))
	e.person("carl", aggregates.KindStaff, "", aggregates.LevelFull, nil, team("t2"))
	e.person("erin", aggregates.KindStaff, "", aggregates.LevelDisabled, nil, team("t1"))
	e.must("admin", &aggregates.RegisterPrincipal{Principal: "dora", Kind: aggregates.KindStaff, Units: []events.UnitRef{team("t1")}})
	e.must("admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-1", Units: []events.UnitRef{team("t1")}}})
}

func newID(t testing.TB) string {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}
