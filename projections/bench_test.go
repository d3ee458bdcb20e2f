package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// Benchmarks run on a Trackops tenant of benchPrincipals principals and benchRecords records
// (cases, invoices linked to cases, clients), built once per process:
//
//	go test ./projections/ -run '^$' -bench . -benchtime 2s
const (
	benchPrincipals = 2000
	benchRecords    = 100_000
	benchClients    = 1000
	benchLocations  = 20
)

// benchHistory builds the benchmark tenant's messages, numbered from 1, with records records.
func benchHistory(tb testing.TB, records int) []events.Message {
	g := newGenerator(1)
	t := &genTenant{id: "t0", kinds: map[string]string{}, records: map[string][]string{}}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		tb.Fatal(err)
	}
	g.emit(t, events.TenantRef("t0"), preset)
	for i := range benchLocations {
		g.emit(t, events.TenantRef("t0"), events.UnitDefinedV1{Unit: loc(i)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range benchPrincipals {
		id := fmt.Sprintf("p%d", i)
		// p0 is full, p1 limited; the rest a mix.
		levels := []string{aggregates.LevelFull, aggregates.LevelLimited, aggregates.LevelFullLocation}
		level := levels[rng.IntN(3)]
		if i < 2 {
			level = levels[i]
		}
		g.emit(t, events.PrincipalRef(id), events.PrincipalRegisteredV1{Principal: id, Kind: aggregates.KindStaff,
			Email: id + "@t0.test", Units: []events.UnitRef{loc(rng.IntN(benchLocations))}})
		g.emit(t, events.PrincipalRef(id), events.AccessLevelSetV1{Level: level, From: aggregates.LevelDisabled},
			events.RoleAssignedV1{Role: "staff"})
		g.emit(t, events.TenantRef("t0"), events.SeatChangedV1{Principal: id, From: aggregates.LevelDisabled, To: level})
	}
	for i := range benchClients {
		id := fmt.Sprintf("cl%05d", i)
		g.emit(t, events.RecordAggregate("client", id), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "client", ID: id}})
	}
	for i := range records - benchClients {
		typ := "case"
		if i%2 == 1 {
			typ = "invoice"
		}
		b := events.RecordBody{Type: typ, ID: fmt.Sprintf("%s%06d", typ, i), Client: fmt.Sprintf("cl%05d", rng.IntN(benchClients)),
			Units: []events.UnitRef{loc(rng.IntN(benchLocations))}, Owner: fmt.Sprintf("p%d", rng.IntN(benchPrincipals)),
			Assignees: []events.Assignee{{Principal: fmt.Sprintf("p%d", rng.IntN(benchPrincipals)), Relation: "assignee"}}}
		if typ == "invoice" {
			b.Links = []events.RecordRef{{Type: "case", ID: fmt.Sprintf("case%06d", rng.IntN(i)/2*2)}}
			b.Assignees[0].Relation = "salesperson"
		}
		g.emit(t, events.RecordAggregate(typ, b.ID), events.RecordRegisteredV1{RecordBody: b})
	}
	return messages(g.items)
}

func loc(i int) events.UnitRef {
	return events.UnitRef{Kind: aggregates.UnitLocation, ID: fmt.Sprintf("l%d", i)}
}

var bench struct {
	once sync.Once
	dir  string
	msgs []events.Message
	db   *DB
	eng  *Engine
}

// benchEngine returns the engine over the benchmark tenant, built on first use.
func benchEngine(b *testing.B) *Engine {
	bench.once.Do(func() {
		bench.msgs = benchHistory(b, benchRecords)
		dir, err := os.MkdirTemp("", "projections-bench")
		if err != nil {
			b.Fatal(err)
		}
		bench.dir = dir
		// The block cache holds the data set, as a deployment sizes it for its working set.
		if bench.db, err = OpenDB(dir, DBOptions{CacheBytes: 512 << 20}); err != nil {
			b.Fatal(err)
		}
		p, err := NewProjector(bench.db, nil)
		if err != nil {
			b.Fatal(err)
		}
		applyAll(b, p, bench.msgs, 4096)
		if err := bench.db.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		bench.eng = NewEngine(bench.db, p, EngineOptions{})
	})
	if bench.eng == nil {
		b.Fatal("benchmark data set not built")
	}
	return bench.eng
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.db != nil {
		bench.db.Close()
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// BenchmarkProjection applies the benchmark history (catching up: slices of 4096 messages, as
// Follow hands them) into a fresh DB and reports events per second. BENCH_PROJECTION_RECORDS
// sets the number of records (default benchRecords): at 10^6 the read model outgrows the
// memtables and compactions take their share.
func BenchmarkProjection(b *testing.B) {
	records := benchRecords
	if v := os.Getenv("BENCH_PROJECTION_RECORDS"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 2*benchClients {
			b.Fatalf("BENCH_PROJECTION_RECORDS=%q: want a number of records of at least %d", v, 2*benchClients)
		}
		records = int(n)
	}
	msgs := benchHistory(b, records)
	nev := 0
	for _, m := range msgs {
		nev += len(m.Events)
	}
	b.ResetTimer()
	var elapsed, cpu time.Duration
	var flushed, compacted uint64
	for range b.N {
		b.StopTimer()
		db, err := OpenDB(b.TempDir(), DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := NewProjector(db, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		applyAll(b, p, msgs, 4096)
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		// What Pebble wrote in the timed window: flushes are the model's size, compactions
		// what the LSM rewrote of it (more at 10^6).
		tot := db.pb.Metrics().Total()
		flushed += tot.TableBytesFlushed
		compacted += tot.TableBytesCompacted
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(nev*b.N)/elapsed.Seconds(), "events/s")
	// CPU time (every thread, compactions included) says more than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(nev*b.N), "cpu-µs/event")
	b.ReportMetric(float64(flushed)/float64(nev*b.N), "flushed-B/event")
	b.ReportMetric(float64(compacted)/float64(nev*b.N), "compacted-B/event")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProjectionFollow is BenchmarkProjection through the real stream: Follow's decoding
// and delivery included (the stream is filled before the timer starts).
func BenchmarkProjectionFollow(b *testing.B) {
	msgs := benchHistory(b, benchRecords)[:30_000]
	env := eventstest.Start(b)
	newAppender(env.Store).add(b, itemsOf(msgs))
	nev := 0
	for _, m := range msgs {
		nev += len(m.Events)
	}
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for range b.N {
		b.StopTimer()
		db, err := OpenDB(b.TempDir(), DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		p, err := NewProjector(db, env.Store)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		go func() { done <- p.Run(ctx) }()
		if err := p.WaitFor(ctx, uint64(len(msgs))); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		cancel()
		<-done
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(nev*b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(nev*b.N), "cpu-µs/event")
}

func itemsOf(msgs []events.Message) []item {
	out := make([]item, len(msgs))
	for i, m := range msgs {
		out[i] = item{subject: m.Subject, envs: m.Events}
	}
	return out
}

// BenchmarkCheck asks check for random principals and records of the benchmark tenant, one at
// a time, and reports the median and 99th percentile latency.
func BenchmarkCheck(b *testing.B) {
	eng := benchEngine(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	qs := make([]CheckQuery, 4096)
	for i := range qs {
		typ := []string{"case", "invoice"}[rng.IntN(2)]
		n := rng.IntN(benchRecords-benchClients)/2*2 + map[string]int{"case": 0, "invoice": 1}[typ]
		qs[i] = CheckQuery{Principal: fmt.Sprintf("p%d", rng.IntN(benchPrincipals)), Permission: typ + ".view",
			Record: &events.RecordRef{Type: typ, ID: fmt.Sprintf("%s%06d", typ, n)}}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := eng.Check(ctx, "t0", qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkCheckParallel is BenchmarkCheck from every core at once: checks per second.
func BenchmarkCheckParallel(b *testing.B) {
	eng := benchEngine(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		ctx := context.Background()
		for pb.Next() {
			n := rng.IntN(benchRecords - benchClients)
			typ := []string{"case", "invoice"}[n%2]
			q := CheckQuery{Principal: fmt.Sprintf("p%d", rng.IntN(benchPrincipals)), Permission: typ + ".view",
				Record: &events.RecordRef{Type: typ, ID: fmt.Sprintf("%s%06d", typ, n)}}
			if _, err := eng.Check(ctx, "t0", q); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
}

// BenchmarkVisibleFirstPage lists the first 100 cases and invoices of a full principal (one
// range over every record of the type) and of a limited one (its assignments and, for
// invoices, the invoices linked to its cases), and clients for the limited one (Trackops keeps
// client.view at scope all for limited staff: TO-4a).
func BenchmarkVisibleFirstPage(b *testing.B) {
	eng := benchEngine(b)
	ctx := context.Background()
	tests := []struct{ name, principal, typ string }{
		{"full/case", "p0", "case"},
		{"full/invoice", "p0", "invoice"},
		{"limited/case", "p1", "case"},
		{"limited/invoice", "p1", "invoice"},
		{"limited/client", "p1", "client"},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			q := VisibleQuery{Principal: tc.principal, Type: tc.typ}
			a, err := eng.Visible(ctx, "t0", q)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := eng.Visible(ctx, "t0", q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(a.IDs)), "ids")
		})
	}
}

// BenchmarkPrincipals asks who may view a case: every principal of the benchmark tenant holds
// the staff role, so all 2,000 are candidates.
func BenchmarkPrincipals(b *testing.B) {
	eng := benchEngine(b)
	ctx := context.Background()
	q := PrincipalsQuery{Record: events.RecordRef{Type: "case", ID: "case000000"}, Permission: "case.view"}
	a, err := eng.Principals(ctx, "t0", q)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := eng.Principals(ctx, "t0", q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(a.Principals)), "allowed") // after ResetTimer, which drops metrics
}
