package commands

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// BenchmarkCommands measures commands through NATS end to end (request, decode, decide on
// cached state, append with expected sequence, answer) with 1 and 16 concurrent clients, on one
// service instance and the embedded server's default fsync interval. Workloads: registering new
// records (each reads its empty subject first), assigning existing, cached records, and moving
// principals between access levels (an atomic batch with the tenant each, so they take the
// tenant's lock in turn: nats-server stages every atomic batch of an R1 file stream in a
// temporary file store of its own, created, fsynced and deleted per batch, which bounds them).
func BenchmarkCommands(b *testing.B) {
	for _, work := range []string{"RegisterRecord", "AssignRecord", "SetAccessLevel"} {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", work, clients), func(b *testing.B) {
				e := startEnv(b, 1)
				e.t = b
				e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
					Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
				const records = 2000
				if work == "AssignRecord" {
					for i := range records {
						e.must("admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: fmt.Sprintf("c%d", i)}})
					}
				}
				const staff = 64
				if work == "SetAccessLevel" {
					for i := range staff {
						e.must("admin", &aggregates.RegisterPrincipal{Principal: fmt.Sprintf("s%d", i), Kind: aggregates.KindStaff, Email: fmt.Sprintf("s%d@acme.test", i)})
					}
				}
				cs := make([]*Client, clients)
				for i := range cs {
					cs[i] = NewClient(e.Connect(b))
				}
				var next atomic.Int64
				var failed atomic.Value
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for _, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							var cmd aggregates.Command
							if work == "SetAccessLevel" {
								// An atomic batch of the principal and the tenant (its seat
								// count), so every one of them takes the tenant's lock in turn.
								level := aggregates.LevelFull
								if (i/staff)%2 == 1 {
									level = aggregates.LevelLimited
								}
								cmd = &aggregates.SetAccessLevel{CommandBase: base("admin"), Principal: fmt.Sprintf("s%d", i%staff), Level: level}
							} else if work == "RegisterRecord" {
								cmd = &aggregates.RegisterRecord{CommandBase: base("admin"),
									RecordBody: events.RecordBody{Type: "case", ID: fmt.Sprintf("r%d", i), Owner: "admin"}}
							} else {
								// Each iteration adds a new assignee, so every command writes.
								cmd = &aggregates.AssignRecord{CommandBase: base("admin"), Type: "case",
									ID: fmt.Sprintf("c%d", i%records), Principal: fmt.Sprintf("p%d", i)}
							}
							if _, err := c.Do(e.ctx, "acme", cmd); err != nil {
								failed.Store(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commands/s")
			})
		}
	}
}

// BenchmarkTenantLoad measures the first load of a tenant whose subject holds a long seat
// history (BENCH_SEATS seat changes, default 10,000, spread among record messages as in a real
// stream) by a cache that never saw it: from the whole history ("full") and from a snapshot
// plus the messages after it ("snapshot", the snapshot 100 seat changes behind); "full-spill"
// as "full" with the spill on, which the load moves all but 1,024 of the commands to (and
// "snapshot/spill").
func BenchmarkTenantLoad(b *testing.B) {
	e := startEnvWith(b, 1, Options{SnapshotAfter: -1})
	e.t = b
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	seats := 10_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_SEATS")); err == nil && v > 0 {
		seats = v
	}
	subject := "acl.events.acme.tenant.acme"
	tenant := e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	seatChanges := func(n int) {
		seq := tenant.Seq
		for i := range n {
			meta := events.Meta{Tenant: "acme", Aggregate: events.TenantRef("acme"), Actor: "admin",
				CommandID: newID(b), CommandHash: strings.Repeat("ab", 32), Cause: "SetAccessLevel", Time: time.Now()}
			env, err := events.New(meta, events.SeatChangedV1{Principal: fmt.Sprintf("p%d", i), From: aggregates.LevelDisabled, To: aggregates.LevelFull})
			if err != nil {
				b.Fatal(err)
			}
			app, err := e.Store.Append(e.ctx, subject, seq, meta.CommandID+"/tenant.acme", []events.Envelope{env})
			if err != nil {
				b.Fatal(err)
			}
			seq = app.Seq
		}
		tenant = e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	}
	// Records appended meanwhile put the tenant's messages in every block of the stream.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				ref := events.RecordAggregate("case", fmt.Sprintf("w%d-%d", w, i))
				rs, _ := events.Subject("acme", ref)
				env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin", CommandID: newID(b), Time: time.Now()},
					events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: ref.ID, Owner: "admin"}})
				if err == nil {
					_, err = e.Store.Append(e.ctx, rs, 0, "", []events.Envelope{env})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	seatChanges(seats)
	close(done)
	wg.Wait()
	snaps, err := e.Store.OpenSnapshots(e.ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	// load loads the tenant b.N times, each by a new cache; with spilled, each cache has a
	// spill of its own (opened before the timer runs), to which the load moves all but the
	// newest keptTenantCommands of the tenant's commands.
	load := func(b *testing.B, sn *snapshotter, spilled bool) {
		var last any
		var lastEnt *entry
		var lastCache *cache
		b.ResetTimer() // the set-up of the sub-benchmark is not measured
		for range b.N {
			c := newCache(e.Store, 10, slog.Default())
			if sn != nil {
				c.snaps.Store(sn)
			}
			if spilled {
				b.StopTimer()
				if lastCache != nil {
					lastCache.closeSpill()
				}
				if err := c.openSpill(e.ctx, b.TempDir(), nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			ent, err := c.entry("acme", events.TenantRef("acme"))
			if err != nil {
				b.Fatal(err)
			}
			s, err := c.fresh(e.ctx, ent)
			if err != nil {
				b.Fatal(err)
			}
			last, lastEnt, lastCache = s.state, ent, c
		}
		b.StopTimer()
		if got, err := lastEnt.withCommands(last.(*aggregates.Tenant)); err != nil || !reflect.DeepEqual(got, tenant) {
			b.Fatal("the loaded tenant differs from the replayed one")
		}
		b.ReportMetric(float64(seats), "seat-changes")
		b.ReportMetric(float64(lastEnt.cmds.lenHeld()), "commands-held")
		lastCache.closeSpill()
	}
	b.Run("full", func(b *testing.B) { load(b, nil, false) })
	b.Run("full-spill", func(b *testing.B) { load(b, nil, true) })
	b.Run("snapshot", func(b *testing.B) {
		data, err := encodeTenantSnapshot(subject, tenant)
		if err != nil {
			b.Fatal(err)
		}
		if err := snaps.Put(e.ctx, subject, tenant.Seq, data); err != nil {
			b.Fatal(err)
		}
		seatChanges(100)
		// after: no write during the measurement (the tail is shorter than that).
		sn := &snapshotter{snaps: snaps, after: 1 << 30, logger: slog.Default(), ctx: e.ctx, writing: map[string]bool{}}
		b.Run("memory", func(b *testing.B) { load(b, sn, false) })
		b.Run("spill", func(b *testing.B) { load(b, sn, true) })
		b.ReportMetric(float64(len(data)), "snapshot-bytes")
	})
}

// BenchmarkSeatChangeState measures what a seat change costs the service in memory work on a
// tenant with n seat holders and n remembered commands: the copy of the cached state it
// applies its event to ("clone": the commands are in the entry's index, as cached;
// "clone-with-commands": in the state, as before the index), and the seat count of the
// decision.
func BenchmarkSeatChangeState(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		t := aggregates.NewTenant("acme")
		for i := range n {
			t.SeatHolders[fmt.Sprintf("p%d", i)] = aggregates.LevelFull
			t.Commands[fmt.Sprintf("%08d-0000-7000-8000-000000000000", i)] = aggregates.CommandResult{Seq: uint64(i),
				Events: []string{fmt.Sprintf("%08d-0000-7000-8000-000000000001", i)}, Hash: strings.Repeat("ab", 32)}
		}
		b.Run(fmt.Sprintf("clone-with-commands/n=%d", n), func(b *testing.B) {
			for range b.N {
				cloneState(t)
			}
		})
		cached := cloneState(t).(*aggregates.Tenant)
		(&entry{ref: events.TenantRef("acme")}).absorbState(cached)
		b.Run(fmt.Sprintf("clone/n=%d", n), func(b *testing.B) {
			for range b.N {
				cloneState(cached)
			}
		})
		b.Run(fmt.Sprintf("seats-used/n=%d", n), func(b *testing.B) {
			for range b.N {
				t.SeatsUsed(aggregates.LevelFull)
			}
		})
	}
}

// BenchmarkBatch measures the bulk path: batches of 1000 commands of the shape an import sends
// (principals registered, given a level, a role; then records linked to each other), on one
// service instance without a projector, one batch at a time (seq) and with the next batch in
// flight before the answer to the one before (pipe, Client.Pipeline). It reports commands/s.
func BenchmarkBatch(b *testing.B) {
	b.Run("seq", func(b *testing.B) { benchBatch(b, 1) })
	b.Run("pipe", func(b *testing.B) { benchBatch(b, 2) })
}

func benchBatch(b *testing.B, depth int) {
	e := startEnv(b, 1)
	e.t = b
	const principals = 2000
	var cmds []aggregates.Command
	a := aggregates.CommandBase{Actor: "admin"}
	cmds = append(cmds, &aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	pid := func(j int) string { return fmt.Sprintf("p%05d", j) }
	for j := range principals {
		cmds = append(cmds, &aggregates.RegisterPrincipal{CommandBase: a, Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@acme.test"})
	}
	for j := range principals {
		cmds = append(cmds, &aggregates.SetAccessLevel{CommandBase: a, Principal: pid(j), Level: aggregates.LevelLimited})
	}
	for j := range principals {
		cmds = append(cmds, &aggregates.AssignRole{CommandBase: a, Principal: pid(j), Role: "staff"})
	}
	records := max(b.N-len(cmds), 0)
	for i := range records {
		r := events.RecordBody{Type: "case", ID: fmt.Sprintf("c%07d", i), Client: "c1",
			Assignees: []events.Assignee{{Principal: pid(i % principals), Relation: events.DefaultRelation}}}
		if i%2 == 1 {
			r.Type, r.ID = "invoice", fmt.Sprintf("i%07d", i)
			r.Links = []events.RecordRef{{Type: "case", ID: fmt.Sprintf("c%07d", i-1)}}
		}
		cmds = append(cmds, &aggregates.RegisterRecord{CommandBase: a, RecordBody: r})
	}
	batches := make([][]BatchCommand, 0, len(cmds)/MaxBatch+1)
	for start := 0; start < len(cmds); start += MaxBatch {
		part := cmds[start:min(start+MaxBatch, len(cmds))]
		bc := make([]BatchCommand, len(part))
		for i, c := range part {
			c.Base().CommandID = fmt.Sprintf("00000000-0000-4000-8000-%012d", start+i)
			body, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			bc[i] = BatchCommand{Command: c.Name(), Body: body}
		}
		batches = append(batches, bc)
	}
	check := func(bc []BatchCommand, out []BatchOutcome, err error) {
		if err != nil {
			b.Fatal(err)
		}
		for i, o := range out {
			if o.Err != nil {
				b.Fatalf("%s: %v", bc[i].Command, o.Err)
			}
		}
	}
	b.ResetTimer()
	pipe := e.c.Pipeline(false)
	var queue []*PendingBatch
	for k, bc := range batches {
		if depth == 1 {
			out, err := e.c.Batch(e.ctx, "acme", bc)
			check(bc, out, err)
			continue
		}
		queue = append(queue, pipe.Send(e.ctx, "acme", bc))
		for len(queue) >= depth || (k == len(batches)-1 && len(queue) > 0) {
			out, err := queue[0].Wait()
			check(queue[0].cmds, out, err)
			queue = queue[1:]
		}
	}
	b.ReportMetric(float64(len(cmds))/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkSpillHas measures the question every creating command asks of the spill, about an
// aggregate it does not hold, with 200,000 states spilled: answered by the in-memory filter, and
// by a Pebble Get (the filter not known, as before it existed and while its scan runs).
func BenchmarkSpillHas(b *testing.B) {
	sp, err := openSpill(b.TempDir(), "s1", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	st, err := encodeState(aggregates.NewRecord("invoice", "i"))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200_000 {
		if err := sp.set(fmt.Sprintf("acl.events.acme.record.invoice.i%07d", i), st); err != nil {
			b.Fatal(err)
		}
	}
	<-sp.scanned
	for _, filter := range []bool{true, false} {
		name := map[bool]string{true: "filter", false: "pebble"}[filter]
		b.Run(name, func(b *testing.B) {
			sp.known.Store(filter)
			i := 0
			for b.Loop() {
				if sp.has(fmt.Sprintf("acl.events.acme.record.case.c%07d", i)) {
					b.Fatal("has a state never spilled")
				}
				i++
			}
		})
	}
}
