package replay

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/projections"
)

// Benchmarks on a synthetic stream: -replay.events sets its length (default 100,000; the
// figures in doc.go are for 1,000,000). The stream is written with asynchronous publishes of
// well-formed events (not through Decide, which would take minutes at this size): tenants of
// preset trackops, principals with roles and levels, records with assignees, then a mix of
// assignments, updates and role changes.
var (
	benchEvents = flag.Int("replay.events", 100_000, "events in the benchmarks' stream")
	benchDense  = flag.Uint64("replay.dense", 0, "DenseCheckpoints of the as_of benchmark (0: the default, all)")
	// The stream's setup (publishing, applying, checkpointing) costs far more CPU than what is
	// measured: -cpuprofile would show mostly the setup. This one covers the measured loops.
	benchProfile = flag.String("replay.cpuprofile", "", "write a CPU profile of the measured loops only")
)

// profileLoops starts the measured-loops CPU profile when -replay.cpuprofile is set; the
// returned function stops it.
func profileLoops(b *testing.B) func() {
	if *benchProfile == "" {
		return func() {}
	}
	f, err := os.Create(*benchProfile)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

type benchGen struct {
	rnd   *rand.Rand
	now   time.Time
	n     int
	out   []benchMsg
	preps map[string]int // tenant -> principals
}

type benchMsg struct {
	subject string
	data    []byte
}

func (g *benchGen) emit(tenant string, ref events.AggregateRef, ds ...events.Data) {
	g.n++
	g.now = g.now.Add(time.Millisecond)
	var envs []events.Envelope
	for _, d := range ds {
		e, err := events.New(events.Meta{Tenant: tenant, Aggregate: ref, Actor: "admin",
			CommandID: fmt.Sprintf("00000000-0000-7000-8000-%012d", g.n), Time: g.now}, d)
		if err != nil {
			panic(err)
		}
		envs = append(envs, e)
	}
	subject, err := events.Subject(tenant, ref)
	if err != nil {
		panic(err)
	}
	data, err := json.Marshal(envs)
	if err != nil {
		panic(err)
	}
	g.out = append(g.out, benchMsg{subject, data})
}

// benchStream makes n messages over 4 tenants.
func benchStream(n int) []benchMsg {
	g := &benchGen{rnd: rand.New(rand.NewPCG(1, 2)), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tenants := []string{"t0", "t1", "t2", "t3"}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		panic(err)
	}
	principals := max(n/500, 10)
	records := max(n/4, 10)
	for _, t := range tenants {
		g.emit(t, events.TenantRef(t), preset)
		g.emit(t, events.TenantRef(t), events.UnitDefinedV1{Unit: events.UnitRef{Kind: "location", ID: "east"}})
	}
	pid := func(i int) string { return fmt.Sprintf("p%d", i%principals) }
	rid := func(i int) string { return fmt.Sprintf("r%d", i%records) }
	for i := range principals {
		t := tenants[i%4]
		g.emit(t, events.PrincipalRef(pid(i)), events.PrincipalRegisteredV1{Principal: pid(i), Kind: "staff",
			Email: pid(i) + "@x.test", Units: []events.UnitRef{{Kind: "location", ID: "east"}}},
			events.RoleAssignedV1{Role: "staff"}, events.AccessLevelSetV1{Level: []string{"full", "full_location", "limited"}[i%3], From: "disabled"})
	}
	for i := 0; len(g.out) < n; i++ {
		t := tenants[i%4]
		typ := []string{"case", "invoice"}[i%2]
		switch {
		case i < records:
			b := events.RecordBody{Type: typ, ID: rid(i), Client: fmt.Sprintf("c%d", i%50),
				Assignees: []events.Assignee{{Principal: pid(g.rnd.IntN(principals)), Relation: "assignee"}}}
			if i%3 == 0 {
				b.Units = []events.UnitRef{{Kind: "location", ID: "east"}}
			}
			if typ == "invoice" {
				b.Links = []events.RecordRef{{Type: "case", ID: rid(i - 1)}}
			}
			g.emit(t, events.RecordAggregate(typ, rid(i)), events.RecordRegisteredV1{RecordBody: b})
		case i%200 == 0:
			g.emit(t, events.TenantRef(t), events.RolePermissionRevokedV1{Role: "staff", Grant: events.Grant{Permission: "expense.view", Scope: "all"}})
		case i%200 == 1:
			g.emit(t, events.TenantRef(t), events.RolePermissionGrantedV1{Role: "staff", Grant: events.Grant{Permission: "expense.view", Scope: "all"}})
		default:
			r := g.rnd.IntN(records)
			g.emit(tenants[r%4], events.RecordAggregate([]string{"case", "invoice"}[r%2], rid(r)),
				events.RecordAssignedV2{Principal: pid(g.rnd.IntN(principals)), Relation: "assignee"})
		}
	}
	return g.out[:n]
}

// publishAll writes msgs to the stream asynchronously, a window of acks at a time.
func publishAll(tb testing.TB, env *eventstest.Env, msgs []benchMsg) {
	js, err := jetstream.New(env.Conn, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		tb.Fatal(err)
	}
	for i, m := range msgs {
		if _, err := js.PublishAsync(m.subject, m.data); err != nil {
			tb.Fatal(err)
		}
		if i%2000 == 1999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
}

// benchStack is a stack whose stream holds n synthetic events, fully applied and checkpointed
// every `every`.
func benchStack(b *testing.B, n int, every uint64) *stack {
	s := startStack(b, Options{CheckpointEvery: every, DenseCheckpoints: *benchDense})
	start := time.Now()
	publishAll(b, s.env, benchStream(n))
	s.d.seq = uint64(n)
	s.syncWithin(b, 30*time.Minute)
	eventstest.WaitFor(b, 20*time.Minute, func() error {
		seqs := s.svc.ckpts.list()
		if len(seqs) == 0 || seqs[len(seqs)-1]+every < uint64(n) {
			return fmt.Errorf("checkpoints up to %v", seqs)
		}
		prev, newest := uint64(0), seqs[len(seqs)-1]
		for _, c := range seqs {
			if m := s.svc.ckpts.grid.missing(prev, c, newest); len(m) > 0 {
				return fmt.Errorf("checkpoints lack %v", m)
			}
			prev = c
		}
		return nil
	})
	// Let the bulk load's compactions (model and audit index) finish before measuring: they are
	// not the as_of's cost, and they would be counted in its CPU.
	if err := s.db.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	settle(b)
	b.Logf("stream of %d events written, applied and checkpointed every %d (dense %d) in %v; %d checkpoints: %d MiB; audit index %d MiB; model %d MiB",
		n, every, *benchDense, time.Since(start), len(s.svc.ckpts.list()), diskUse(b, filepath.Join(s.svc.opts.Dir, "checkpoints"))>>20,
		diskUse(b, filepath.Join(s.svc.opts.Dir, "audit"))>>20, diskUse(b, s.db.Dir())>>20)
	return s
}

// settle waits, at most 10 minutes, until the process uses less than 5% of a core for a second.
func settle(b *testing.B) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		c0 := cpuTime()
		time.Sleep(time.Second) // measuring idleness: there is nothing to wait on
		if cpuTime()-c0 < 50*time.Millisecond {
			return
		}
	}
	b.Logf("the process never settled: CPU figures include background work")
}

// diskUse sums the sizes of the files under dir, each hard-linked file once.
func diskUse(tb testing.TB, dir string) int64 {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		tb.Logf("disk use of %s: %v", dir, err)
	}
	return total
}

// BenchmarkAsOfCheck: an as_of check at a moment no cached state holds, by distance from the
// nearest checkpoint (the events replayed). p50/p99 are per query.
func BenchmarkAsOfCheck(b *testing.B) {
	const every = 2000
	s := benchStack(b, *benchEvents, every)
	ckpts := s.svc.ckpts.list()
	exact := slices.DeleteFunc(slices.Clone(ckpts), func(c uint64) bool { return c%every != 0 || c+every > uint64(*benchEvents) })
	defer profileLoops(b)()
	// Moments: at a fixed distance past each exact checkpoint in turn, or (distance=random)
	// anywhere in the stream, as an auditor asks; the grid then decides how far the checkpoint
	// below is.
	moments := map[string]func(i int) uint64{}
	names := []string{}
	for _, dist := range []uint64{0, every / 4, every / 2, every - 1} {
		name := fmt.Sprintf("events=%d/distance=%d", *benchEvents, dist)
		names = append(names, name)
		moments[name] = func(i int) uint64 { return exact[i%len(exact)] + dist }
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	random := fmt.Sprintf("events=%d/distance=random", *benchEvents)
	names = append(names, random)
	moments[random] = func(int) uint64 { return 8 + rnd.Uint64N(uint64(*benchEvents)-8) } // after t0's setup
	// An auditor stepping forward through time, 100 messages at a time, 16 steps from each
	// checkpoint in turn: each step may take over the state of the one before.
	steps := fmt.Sprintf("events=%d/distance=steps-of-100", *benchEvents)
	names = append(names, steps)
	moments[steps] = func(i int) uint64 { return exact[(i/16)%len(exact)] + 50 + 100*uint64(i%16) }
	for _, name := range names {
		moment := moments[name]
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				seq := moment(i)
				start := time.Now()
				e, release, err := s.svc.AsOf(context.Background(), "t0", Moment{Seq: seq})
				if err != nil {
					b.Fatal(err)
				}
				_, err = e.Check(context.Background(), "t0", projections.CheckQuery{Principal: "p0", Permission: "case.view"})
				release()
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
			// CPU per query (the whole process: the embedded server's direct gets included),
			// the figure that does not depend on what else the machine runs.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkRebuild: the whole stream into a fresh read model; events/s.
func BenchmarkRebuild(b *testing.B) {
	env := eventstest.Start(b)
	msgs := benchStream(*benchEvents)
	publishAll(b, env, msgs)
	defer profileLoops(b)()
	for _, model := range []Model{ModelProjections, ModelAudit} {
		b.Run(fmt.Sprintf("%s/events=%d", model, *benchEvents), func(b *testing.B) {
			var p Progress
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				var err error
				if p, err = Rebuild(context.Background(), env.Store, dir, model, 0, nil); err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(dir)
			}
			b.ReportMetric(float64(p.Events)/p.Elapsed.Seconds(), "events/s")
			// Per CPU second of the whole process (the embedded server included): the figure
			// that does not depend on what else the machine runs.
			b.ReportMetric(float64(p.Events)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
		})
	}
}
