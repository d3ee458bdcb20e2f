package commands

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// BenchmarkHotRecord: one record already written `written` times (assigned and unassigned one
// principal in turn, appended straight to the stream and loaded by the service at its next
// command), then b.N more writes, one at a time through Service.Execute (no NATS request
// around it), with the spill on: what a command costs on a hot aggregate, and what its state
// holds (the commands it keeps in memory, its bytes in the spill, written on every command).
// Run it with a small fixed count (-benchtime 300x): without a bound the state grows by each.
func BenchmarkHotRecord(b *testing.B) {
	for _, written := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("written=%d", written), func(b *testing.B) {
			e := startEnvWith(b, 1, Options{StateDir: b.TempDir()})
			e.t = b
			e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
				Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
			e.must("admin", &aggregates.RegisterPrincipal{Principal: "bob", Kind: aggregates.KindStaff, Email: "bob@acme.test"})
			e.must("admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: "hot"}})
			s := e.svcs[0]
			write := func(i int) {
				var cmd aggregates.Command = &aggregates.AssignRecord{Type: "case", ID: "hot", Principal: "bob"}
				if i%2 == 1 {
					cmd = &aggregates.UnassignRecord{Type: "case", ID: "hot", Principal: "bob"}
				}
				base := cmd.Base()
				base.Tenant, base.Actor, base.CommandID = "acme", "admin", newID(b)
				if res, err := s.Execute(e.ctx, cmd); err != nil || len(res.Events) == 0 {
					b.Fatalf("write %d: %+v, %v", i, res, err)
				}
			}
			// The record's first writes go to the stream straight from another connection, as
			// another instance's would: the service then loads them all at its next command.
			subject, err := events.Subject("acme", events.AggregateRef{Kind: events.KindRecord, Type: "case", ID: "hot"})
			if err != nil {
				b.Fatal(err)
			}
			last := e.lastSeq()
			var pending []*events.Pending
			for i := range written {
				var d events.Data = events.RecordAssignedV2{Principal: "bob", Relation: events.DefaultRelation}
				if i%2 == 1 {
					d = events.RecordUnassignedV2{Principal: "bob", Relation: events.DefaultRelation}
				}
				env, err := events.New(events.Meta{Tenant: "acme", Aggregate: events.AggregateRef{Kind: events.KindRecord, Type: "case", ID: "hot"},
					Actor: "admin", CommandID: newID(b), CommandHash: fmt.Sprintf("%064x", i), Cause: "AssignRecord", Time: time.Now()}, d)
				if err != nil {
					b.Fatal(err)
				}
				p, err := e.Store.AppendAsync(subject, last+uint64(i), "", []events.Envelope{env})
				if err != nil {
					b.Fatal(err)
				}
				pending = append(pending, p)
				if len(pending) == 1000 || i == written-1 { // below nats.go's 4,000 unanswered
					for _, p := range pending {
						if _, err := p.Wait(e.ctx); err != nil {
							b.Fatal(err)
						}
					}
					pending = pending[:0]
				}
			}
			write(written) // loads them (not timed)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := range b.N {
				write(written + 1 + i)
			}
			b.StopTimer()
			// The process's CPU (the embedded nats-server's included): on a shared machine a
			// better figure than the wall time.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			en, err := s.cache.entry("acme", events.AggregateRef{Kind: events.KindRecord, Type: "case", ID: "hot"})
			if err != nil {
				b.Fatal(err)
			}
			snap, err := s.cache.fresh(e.ctx, en)
			if err != nil {
				b.Fatal(err)
			}
			enc, err := encodeState(snap.state)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(stateCommands(snap.state).Len()), "commands-kept")
			b.ReportMetric(float64(len(enc)), "spilled-bytes")
		})
	}
}

// processCPU is the user and system CPU time the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
