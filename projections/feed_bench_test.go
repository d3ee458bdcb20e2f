package projections

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The change feed's cost of one record event on aclbench's compare shape (issue 13's
// comparison with SpiceDB and OpenFGA): one Trackops tenant of feedPrincipals staff (10 % full,
// the rest limited, each in one of 20 locations, role staff), 1,000 clients, and feedRecords
// records, half cases with 1 to 3 assignees, half invoices linked to a case, 20 % with a
// salesperson. BENCH_FEED_PRINCIPALS and BENCH_FEED_RECORDS set other sizes.
var (
	feedPrincipals = envInt("BENCH_FEED_PRINCIPALS", 10_000)
	feedRecords    = envInt("BENCH_FEED_RECORDS", 200_000)
)

var feedBench struct {
	once sync.Once
	eng  *Engine
	seq  uint64
}

func feedBenchEngine(b *testing.B) *Engine {
	feedBench.once.Do(func() {
		g := newGenerator(1)
		t := &genTenant{id: "cmp", kinds: map[string]string{}, records: map[string][]string{}}
		preset, err := aggregates.Preset("trackops")
		if err != nil {
			b.Fatal(err)
		}
		g.emit(t, events.TenantRef("cmp"), preset)
		for i := range benchLocations {
			g.emit(t, events.TenantRef("cmp"), events.UnitDefinedV1{Unit: loc(i)})
		}
		rng := rand.New(rand.NewPCG(3, 4))
		staff := func() string { return fmt.Sprintf("s%05d", rng.IntN(feedPrincipals)) }
		for i := range feedPrincipals {
			id := fmt.Sprintf("s%05d", i)
			level := aggregates.LevelLimited
			if i%10 == 0 {
				level = aggregates.LevelFull
			}
			g.emit(t, events.PrincipalRef(id), events.PrincipalRegisteredV1{Principal: id, Kind: aggregates.KindStaff,
				Email: id + "@cmp.test", Units: []events.UnitRef{loc(rng.IntN(benchLocations))}})
			g.emit(t, events.PrincipalRef(id), events.AccessLevelSetV1{Level: level, From: aggregates.LevelDisabled},
				events.RoleAssignedV1{Role: "staff"})
			g.emit(t, events.TenantRef("cmp"), events.SeatChangedV1{Principal: id, From: aggregates.LevelDisabled, To: level})
		}
		for i := range benchClients {
			id := fmt.Sprintf("cl%05d", i)
			g.emit(t, events.RecordAggregate("client", id), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "client", ID: id,
				Units: []events.UnitRef{loc(i % benchLocations)}}})
		}
		for i := range feedRecords / 2 {
			c := events.RecordBody{Type: "case", ID: fmt.Sprintf("case%06d", i), Client: fmt.Sprintf("cl%05d", rng.IntN(benchClients)),
				Units: []events.UnitRef{loc(rng.IntN(benchLocations))}}
			for range 1 + rng.IntN(3) {
				c.Assignees = append(c.Assignees, events.Assignee{Principal: staff(), Relation: "assignee"})
			}
			g.emit(t, events.RecordAggregate("case", c.ID), events.RecordRegisteredV1{RecordBody: c})
			inv := events.RecordBody{Type: "invoice", ID: fmt.Sprintf("inv%06d", i), Client: c.Client, Units: c.Units,
				Links: []events.RecordRef{{Type: "case", ID: c.ID}}}
			if rng.IntN(5) == 0 {
				inv.Assignees = []events.Assignee{{Principal: staff(), Relation: "salesperson"}}
			}
			g.emit(t, events.RecordAggregate("invoice", inv.ID), events.RecordRegisteredV1{RecordBody: inv})
		}
		msgs := messages(g.items)
		feedBench.eng = engineOver(b, "projections-feed-bench", msgs, true)
		feedBench.seq = msgs[len(msgs)-1].Seq
	})
	if feedBench.eng == nil {
		b.Fatal("data set not built")
	}
	return feedBench.eng
}

// BenchmarkChangeFeedRecordEvent: what the feed spends deriving the changes of one record
// event (Engine.changesOf over a snapshot of the read model before it, as Feed.Run does; the
// event is not applied, so every iteration derives the same change): assigning a limited staff
// member to a case (it gains the case and the invoice linked to it), unassigning one, and
// registering a case and an invoice (the full staff gain it); and a grant of report.view at all
// (aclbench's commands workload's grant: no visible set changes) to a limited and to a full
// staff member (who sees every case and invoice).
//
//	go test ./projections/ -run '^$' -bench ChangeFeedRecordEvent -benchtime 20x
func BenchmarkChangeFeedRecordEvent(b *testing.B) {
	eng := feedBenchEngine(b) // here: its clean-up runs after the sub-benchmarks
	cases := []struct {
		name string
		agg  events.AggregateRef
		d    events.Data
	}{
		{"assign", events.RecordAggregate("case", "case000007"), events.RecordAssignedV2{Principal: "s00001", Relation: "assignee"}},
		{"unassign", events.RecordAggregate("case", "case000007"), nil}, // the case's first assignee
		{"register-case", events.RecordAggregate("case", "case-new"), events.RecordRegisteredV1{RecordBody: events.RecordBody{
			Type: "case", ID: "case-new", Client: "cl00001", Units: []events.UnitRef{loc(1)},
			Assignees: []events.Assignee{{Principal: "s00003", Relation: "assignee"}}}}},
		{"register-invoice", events.RecordAggregate("invoice", "inv-new"), events.RecordRegisteredV1{RecordBody: events.RecordBody{
			Type: "invoice", ID: "inv-new", Client: "cl00001", Units: []events.UnitRef{loc(1)},
			Links: []events.RecordRef{{Type: "case", ID: "case000007"}}}}},
		// A principal's grants changed: its visible sets are compared.
		{"grant-report-limited", events.PrincipalRef("s00001"), events.PermissionGrantedV1{Grant: events.Grant{Permission: "report.view", Scope: aggregates.ScopeAll}}},
		{"grant-report-full", events.PrincipalRef("s00000"), events.PermissionGrantedV1{Grant: events.Grant{Permission: "report.view", Scope: aggregates.ScopeAll}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			d := c.d
			if d == nil {
				v, err := eng.view("cmp")
				if err != nil {
					b.Fatal(err)
				}
				r := v.Record("case", "case000007")
				d = events.RecordUnassignedV2{Principal: r.Assignees[0].Principal, Relation: r.Assignees[0].Relation}
				v.close()
			}
			env, err := events.New(events.Meta{Tenant: "cmp", Aggregate: c.agg, Actor: "admin", CommandID: "c"}, d)
			if err != nil {
				b.Fatal(err)
			}
			env.Seq = feedBench.seq + 1
			evs := []decodedEvent{{e: env, d: d}}
			n := 0
			var maps effectMaps // as Feed.publishJob: each change's map is reused once encoded
			cpu0 := cpuTime()
			for b.Loop() {
				changes, err := eng.changesOf(eng.db.pb.NewSnapshot(), env.Seq, evs, &maps, nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range changes {
					maps.put(c.Visible)
				}
				if len(changes) == 0 {
					b.Fatal("no change derived")
				}
				n = len(changes)
			}
			// Process CPU (background compactions included) says more than wall time on a
			// shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/event")
			b.ReportMetric(float64(n), "changes/event")
		})
	}
}

// principalListeners listens to the principals named (for an audience; the tenant-wide
// questions are not asked by changesOf).
type principalListeners map[string]bool

func (principalListeners) Refresh()                     {}
func (principalListeners) Tenant(string) bool           { return true }
func (principalListeners) Everyone(string) bool         { return false }
func (principalListeners) Gaps(string) bool             { return false }
func (principalListeners) Quiet(string) (uint64, bool)  { return 0, false }
func (principalListeners) Unmoved(uint64) bool          { return false }
func (l principalListeners) Principal(_, p string) bool { return l[p] }

// BenchmarkChangeFeedListened: what the feed spends on one record event of
// BenchmarkChangeFeedRecordEvent when a subscription names one principal it concerns
// ("one": the case's assignee, or the staff member assigned) or none of them ("none": the
// candidates are walked and asked, then nothing is derived). A tenant nobody listens to costs
// nothing here (the feed does not call changesOf); one listened to as a whole costs what
// BenchmarkChangeFeedRecordEvent says.
//
//	go test ./projections/ -run '^$' -bench ChangeFeedListened -benchtime 50x
func BenchmarkChangeFeedListened(b *testing.B) {
	eng := feedBenchEngine(b)
	cases := []struct {
		name string
		agg  events.AggregateRef
		d    events.Data
		who  string
	}{
		{"register-case", events.RecordAggregate("case", "case-new"), events.RecordRegisteredV1{RecordBody: events.RecordBody{
			Type: "case", ID: "case-new", Client: "cl00001", Units: []events.UnitRef{loc(1)},
			Assignees: []events.Assignee{{Principal: "s00003", Relation: "assignee"}}}}, "s00003"},
		{"assign", events.RecordAggregate("case", "case000007"), events.RecordAssignedV2{Principal: "s00001", Relation: "assignee"}, "s00001"},
	}
	for _, c := range cases {
		for _, listen := range []string{"one", "none"} {
			b.Run(c.name+"/"+listen, func(b *testing.B) {
				env, err := events.New(events.Meta{Tenant: "cmp", Aggregate: c.agg, Actor: "admin", CommandID: "c"}, c.d)
				if err != nil {
					b.Fatal(err)
				}
				env.Seq = feedBench.seq + 1
				evs := []decodedEvent{{e: env, d: c.d}}
				l := principalListeners{}
				if listen == "one" {
					l[c.who] = true
				}
				var maps effectMaps
				n := 0
				cpu0 := cpuTime()
				for b.Loop() {
					aud := &audience{l: l, tenant: "cmp"}
					changes, err := eng.changesOf(eng.db.pb.NewSnapshot(), env.Seq, evs, &maps, aud)
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range changes {
						maps.put(c.Visible)
					}
					n = len(changes)
				}
				if want := map[string]int{"one": 1, "none": 0}[listen]; n != want {
					b.Fatalf("%d changes derived, want %d", n, want)
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/event")
			})
		}
	}
}
