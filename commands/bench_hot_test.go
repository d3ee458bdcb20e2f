package commands

import (
	"fmt"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// BenchmarkHotRecord: one record already written `written` times (AssignRecord and
// UnassignRecord of one principal in turn), then b.N more writes, one at a time through
// Service.Execute (no NATS request around it), with the spill on: what a command costs on a hot
// aggregate, and what its state holds (the commands it keeps in memory, its bytes in the spill,
// written on every command). Run it with a fixed count (-benchtime 2000x): each run of the
// function writes the first `written` again.
func BenchmarkHotRecord(b *testing.B) {
	for _, written := range []int{100, 1000, 10000} {
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
			for i := range written {
				write(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				write(written + i)
			}
			b.StopTimer()
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
