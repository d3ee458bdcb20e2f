package projections

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestHandoffSameReadModel runs a random history of commands through two command service
// instances on one stream, racing on a few hot aggregates (conflicts and retries), with
// commands refused, retried with the same id, and both an instance and the projector
// restarted midway. One instance offers its decided states to the projector (a projector
// whose cache holds 8 states, so that most events take an offer or read the read model). The
// read model it builds must be the one a projector without offers builds from the same
// stream, key for key and byte for byte.
func TestHandoffSameReadModel(t *testing.T) {
	env := eventstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := openDB(t)
	h := &handoffRig{t: t, ctx: ctx, env: env, db: db}
	h.startProjector()
	a := h.service(h.offer) // offers to the projector, as acld's
	b := h.service(nil)     // another instance: its writes are never offered
	g := &history{t: t, ctx: ctx, svcs: []*commands.Service{a, a, b}}
	g.setUp()
	g.run(8, 150, 1)
	// Restarts: a new instance (an empty cache) and a new projector (no offers from before).
	a.Close()
	h.stopProjector()
	g.svcs = []*commands.Service{h.service(h.offer), b}
	g.run(8, 100, 2) // offered while no projector runs: dropped
	h.startProjector()
	g.run(8, 150, 3)
	last, err := env.Store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := h.cur.Load()
	waitApplied(t, p, last)
	taken, read := h.loads()
	t.Logf("%d messages; %d commands answered, %d refused; states from offers %d, from the read model %d",
		last, g.ok.Load(), g.refused.Load(), taken, read)
	if taken < 200 || read < 50 {
		t.Fatalf("states from offers %d, from the read model %d: the history did not exercise both", taken, read)
	}
	rebuilt := openDB(t)
	waitApplied(t, runProjector(t, rebuilt, env.Store), last)
	sameContents(t, db, rebuilt)
}

// handoffRig is the projector under test, restartable, and the command service instances.
type handoffRig struct {
	t      *testing.T
	ctx    context.Context
	env    *eventstest.Env
	db     *DB
	cur    atomic.Pointer[Projector] // nil while stopped
	stop   func()
	before [2]uint64 // loads of the projectors stopped: taken, read
}

func (h *handoffRig) startProjector() {
	p, err := NewProjector(h.db, h.env.Store)
	if err != nil {
		h.t.Fatal(err)
	}
	p.states = newStateCache(8)
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("projector: %v", err)
		}
	}
	h.t.Cleanup(func() {
		if h.cur.Load() == p {
			h.stopProjector()
		}
	})
	h.cur.Store(p)
}

func (h *handoffRig) stopProjector() {
	p := h.cur.Swap(nil)
	h.stop()
	taken, read := p.handoff.loadsOf()
	h.before[0] += taken
	h.before[1] += read
}

func (h *handoffRig) loads() (taken, read uint64) {
	taken, read = h.cur.Load().handoff.loadsOf()
	return taken + h.before[0], read + h.before[1]
}

// offer is Options.Offer of the offering instance: to the projector running, if any.
func (h *handoffRig) offer(subject string, expected uint64, before any) {
	if p := h.cur.Load(); p != nil {
		p.Offer(subject, expected, before)
	}
}

// service starts an instance on its own connection, as acld's (the store's owner, no echo),
// with a small cache so that its states are often loaded again.
func (h *handoffRig) service(offer func(string, uint64, any)) *commands.Service {
	nc := h.env.Connect(h.t, h.env.Owner.Option(), nats.NoEcho())
	store, err := events.OpenStore(h.ctx, nc, events.StoreConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	s := commands.NewService(nc, store, commands.Options{CacheSize: 16, Offer: offer})
	if err := s.Start(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(s.Close)
	return s
}

// history sends random commands of tenant acme to the instances.
type history struct {
	t           *testing.T
	ctx         context.Context
	svcs        []*commands.Service
	ok, refused atomic.Int64
}

const (
	historyPrincipals = 24
	historyRecords    = 120
)

func team(id string) events.UnitRef { return events.UnitRef{Kind: aggregates.UnitTeam, ID: id} }

func (g *history) setUp() {
	s := g.svcs[0]
	g.must(s, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	for i := range 4 {
		g.must(s, &aggregates.DefineUnit{Unit: team(fmt.Sprint("t", i))})
	}
	for i := range historyPrincipals {
		id := fmt.Sprint("p", i)
		g.must(s, &aggregates.RegisterPrincipal{Principal: id, Kind: aggregates.KindStaff, Email: id + "@acme.test",
			Units: []events.UnitRef{team(fmt.Sprint("t", i%4))}})
		g.must(s, &aggregates.SetAccessLevel{Principal: id, Level: aggregates.LevelLimited})
	}
	for i := range historyRecords {
		g.must(s, &aggregates.RegisterRecord{RecordBody: g.body(rand.New(rand.NewPCG(uint64(i), 0)), i)})
	}
}

func (g *history) body(r *rand.Rand, i int) events.RecordBody {
	b := events.RecordBody{Type: "repair_order", ID: fmt.Sprint("ro-", i), Units: []events.UnitRef{team(fmt.Sprint("t", r.IntN(4)))},
		Owner: fmt.Sprint("p", r.IntN(historyPrincipals))}
	for range r.IntN(3) {
		b.Assignees = append(b.Assignees, events.Assignee{Principal: fmt.Sprint("p", r.IntN(historyPrincipals)), Relation: events.DefaultRelation})
	}
	return b
}

func (g *history) must(s *commands.Service, cmd aggregates.Command) {
	g.t.Helper()
	if err := g.exec(s, cmd); err != nil {
		g.t.Fatalf("%s: %v", cmd.Name(), err)
	}
}

func (g *history) exec(s *commands.Service, cmd aggregates.Command) error {
	b := cmd.Base()
	b.Tenant, b.Actor = "acme", aggregates.SystemActor
	if b.CommandID == "" {
		b.CommandID = uuid.NewString()
	}
	_, err := s.Execute(g.ctx, cmd)
	return err
}

// run sends n commands from each of w goroutines, to instances at random: most on a few hot
// records and principals (races between the instances), a few refused (an unknown record, a
// removed one), some sent again with the same id to the other instance (a retry).
func (g *history) run(w, n int, seed uint64) {
	var wg sync.WaitGroup
	for k := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(k)))
			for i := range n {
				cmd := g.command(r, i)
				err := g.exec(g.svcs[r.IntN(len(g.svcs))], cmd)
				if r.IntN(8) == 0 { // the same command again, through any instance
					err = g.exec(g.svcs[r.IntN(len(g.svcs))], cmd)
				}
				if err != nil {
					if aggregates.ErrorCode(err) == "" || aggregates.ErrorCode(err) == aggregates.CodeInternal {
						g.t.Errorf("%s: %v", cmd.Name(), err)
						return
					}
					g.refused.Add(1)
					continue
				}
				g.ok.Add(1)
			}
		}()
	}
	wg.Wait()
}

func (g *history) command(r *rand.Rand, i int) aggregates.Command {
	rec := r.IntN(historyRecords)
	if r.IntN(2) == 0 {
		rec = r.IntN(6) // hot
	}
	if r.IntN(50) == 0 {
		rec = historyRecords + 1 // unknown: refused
	}
	pr := fmt.Sprint("p", r.IntN(historyPrincipals))
	id := fmt.Sprint("ro-", rec)
	switch n := r.IntN(100); {
	case n < 35:
		return &aggregates.AssignRecord{Type: "repair_order", ID: id, Principal: pr, Relation: events.DefaultRelation}
	case n < 50:
		return &aggregates.UnassignRecord{Type: "repair_order", ID: id, Principal: pr, Relation: events.DefaultRelation}
	case n < 65:
		return &aggregates.UpdateRecord{RecordBody: g.body(r, rec)}
	case n < 75:
		return &aggregates.GrantPermission{Principal: pr, Permission: "repair_order.view", Scope: aggregates.ScopeAll}
	case n < 80:
		return &aggregates.ClearPermission{Principal: pr, Permission: "repair_order.view"}
	case n < 90:
		return &aggregates.JoinUnit{Principal: pr, Unit: team(fmt.Sprint("t", r.IntN(4)))}
	case n < 97:
		return &aggregates.LeaveUnit{Principal: pr, Unit: team(fmt.Sprint("t", r.IntN(4)))}
	case n < 98 && rec >= 6:
		return &aggregates.RemoveRecord{Type: "repair_order", ID: id}
	}
	return &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: fmt.Sprintf("new-%d-%d", i, r.Uint64()),
		Units: []events.UnitRef{team("t0")}}}
}

// TestHandoffTakesACopy offers a principal's state for its second message: the projector takes
// it (no read), writes what it would have written after a read, and leaves the offered state
// as it was (the command service shares it). An offer of another sequence is not taken.
func TestHandoffTakesACopy(t *testing.T) {
	subject := "acl.events.acme.principal.p1"
	ref := events.PrincipalRef("p1")
	msg := func(seq, expected uint64, d events.Data) events.Message {
		env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "system", CommandID: uuid.NewString(), Time: time.Now()}, d)
		if err != nil {
			t.Fatal(err)
		}
		env.Seq = seq
		return events.Message{Seq: seq, Subject: subject, Expected: expected, Events: []events.Envelope{env}}
	}
	reg := msg(1, 0, events.PrincipalRegisteredV1{Kind: aggregates.KindStaff, Email: "p1@acme.test", Units: []events.UnitRef{team("t1")}})
	grant := msg(2, 1, events.PermissionGrantedV1{Grant: events.Grant{Permission: "repair_order.view", Scope: aggregates.ScopeAll}})
	join := msg(3, 2, events.UnitJoinedV1{Unit: team("t2")})
	offered := aggregates.NewPrincipal("p1")
	for _, e := range reg.Events {
		d, err := events.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		offered.Apply(e, d)
	}
	was := *offered
	wasProv := maps.Clone(offered.Prov)

	run := func(offer bool) (*DB, *Projector) {
		db := openDB(t)
		p, err := NewProjector(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, p, []events.Message{reg}, 1)
		p.DropCache() // the next message reads its state, or takes it
		if offer {
			p.Offer(subject, 1, offered)
			p.Offer(subject, 2, offered) // its Seq is 1: not kept
		}
		applyAll(t, p, []events.Message{grant}, 1)
		p.DropCache()
		applyAll(t, p, []events.Message{join}, 1)
		return db, p
	}
	plain, _ := run(false)
	handed, p := run(true)
	if taken, read := p.handoff.loadsOf(); taken != 1 || read != 1 {
		t.Fatalf("states from offers %d, from the read model %d; want 1 and 1", taken, read)
	}
	stateOf := func(db *DB) []byte {
		v, closer, err := db.pb.Get(principalKey(nil, "acme", "p1"))
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return slices.Clone(v)
	}
	if got, want := stateOf(handed), stateOf(plain); !bytes.Equal(got, want) {
		t.Fatalf("the state written after an offer\n %q\nwant\n %q", got, want)
	}
	if !reflect.DeepEqual(*offered, was) || !maps.Equal(offered.Prov, wasProv) {
		t.Fatalf("the offered state changed: provenance %v, was %v", offered.Prov, wasProv)
	}
}

// TestHandoffOffersOfOneBatchTaken: two messages of one principal applied in one batch each
// take their offer, the second though the batch already holds the principal's state; no offer
// of an applied message stays behind (each held a command service's state until the map filled).
func TestHandoffOffersOfOneBatchTaken(t *testing.T) {
	subject := "acl.events.acme.principal.p1"
	ref := events.PrincipalRef("p1")
	var states []*aggregates.Principal
	st := aggregates.NewPrincipal("p1")
	msg := func(seq uint64, d events.Data) events.Message {
		env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "system", CommandID: uuid.NewString(), Time: time.Now()}, d)
		if err != nil {
			t.Fatal(err)
		}
		env.Seq = seq
		c := *st
		c.Prov = maps.Clone(st.Prov)
		states = append(states, &c) // the state before the message, as offered
		st.Apply(env, d)
		st.Seq = seq
		return events.Message{Seq: seq, Subject: subject, Expected: seq - 1, Events: []events.Envelope{env}}
	}
	reg := msg(1, events.PrincipalRegisteredV1{Kind: aggregates.KindStaff, Email: "p1@acme.test", Units: []events.UnitRef{team("t1")}})
	grant := msg(2, events.PermissionGrantedV1{Grant: events.Grant{Permission: "repair_order.view", Scope: aggregates.ScopeAll}})
	join := msg(3, events.UnitJoinedV1{Unit: team("t2")})
	p, err := NewProjector(openDB(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, []events.Message{reg}, 1)
	p.DropCache()
	p.Offer(subject, 1, states[1])
	p.Offer(subject, 2, states[2])
	applyAll(t, p, []events.Message{grant, join}, 2)
	p.handoff.mu.Lock()
	left := len(p.handoff.offers)
	p.handoff.mu.Unlock()
	if taken, _ := p.handoff.loadsOf(); left != 0 || taken != 1 {
		t.Fatalf("%d offers of applied messages left behind, %d taken; want 0 and 1", left, taken)
	}
}
