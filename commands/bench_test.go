package commands

import (
	"fmt"
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
// records (each reads its empty subject first) and assigning existing, cached records.
func BenchmarkCommands(b *testing.B) {
	for _, work := range []string{"RegisterRecord", "AssignRecord"} {
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
							if work == "RegisterRecord" {
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
