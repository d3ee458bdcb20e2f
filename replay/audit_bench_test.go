package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// auditStream makes the messages of the compare shape for the audit index alone, in memory (no
// stream: what is measured is the index's own work): one trackops tenant, n/20 principals, then
// 3n/4 records, cases and invoices in turn, each invoice linking a random case (some not
// registered yet, as in aclbench's data sets), then until n the commands workload's mix
// (aclbench's Tenant.Op): 45 % assignments to a random record, 15 % updates of one (its body
// with one more assignee), 25 % new records, 10 % grants and 5 % units joined by a random
// principal. load is the number of messages before the mix.
func auditStream(n int) (msgs []events.Message, load int) {
	const tenant = "bench-compare-0"
	rnd := rand.New(rand.NewPCG(7, 8))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(ref events.AggregateRef, ds ...events.Data) {
		seq := uint64(len(msgs) + 1)
		now = now.Add(time.Millisecond)
		m := events.Message{Seq: seq, Time: now}
		for _, d := range ds {
			e, err := events.New(events.Meta{Tenant: tenant, Aggregate: ref, Actor: "admin",
				CommandID: fmt.Sprintf("00000000-0000-7000-8000-%012d", seq), Time: now}, d)
			if err != nil {
				panic(err)
			}
			e.Seq = seq
			m.Events = append(m.Events, e)
		}
		subject, err := events.Subject(tenant, ref)
		if err != nil {
			panic(err)
		}
		m.Subject = subject
		msgs = append(msgs, m)
	}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		panic(err)
	}
	emit(events.TenantRef(tenant), preset)
	principals, records := max(n/20, 10), max(n*3/4, 10)
	pid := func(i int) string { return fmt.Sprintf("p-%07d", i) }
	for i := range principals {
		emit(events.PrincipalRef(pid(i)), events.PrincipalRegisteredV1{Principal: pid(i), Kind: "staff",
			Email: pid(i) + "@x.test"}, events.RoleAssignedV1{Role: "staff"})
	}
	typ := func(i int) string { return []string{"case", "invoice"}[i%2] }
	rid := func(i int) string { return fmt.Sprintf("%s-%08d", typ(i), i) }
	// body is record i's body as registered: the same each time, as aclbench's Tenant.Record.
	body := func(i int) events.RecordBody {
		r := rand.New(rand.NewPCG(uint64(i), 9))
		b := events.RecordBody{Type: typ(i), ID: rid(i), Client: fmt.Sprintf("client-%05d", r.IntN(1000))}
		if typ(i) == "case" {
			for range 1 + r.IntN(3) {
				b.Assignees = append(b.Assignees, events.Assignee{Principal: pid(r.IntN(principals)), Relation: "assignee"})
			}
		} else {
			if r.IntN(100) < 20 {
				b.Assignees = []events.Assignee{{Principal: pid(r.IntN(principals)), Relation: "salesperson"}}
			}
			b.Links = []events.RecordRef{{Type: "case", ID: rid(2 * r.IntN(records/2))}}
		}
		return b
	}
	for i := range records {
		emit(events.RecordAggregate(typ(i), rid(i)), events.RecordRegisteredV1{RecordBody: body(i)})
	}
	load = len(msgs)
	for next := records; len(msgs) < n; {
		r := rnd.IntN(records)
		switch x := rnd.IntN(100); {
		case x < 45:
			emit(events.RecordAggregate(typ(r), rid(r)), events.RecordAssignedV2{Principal: pid(rnd.IntN(principals)), Relation: "assignee"})
		case x < 60:
			b := body(r)
			b.Assignees = append(b.Assignees, events.Assignee{Principal: pid(rnd.IntN(principals)), Relation: "assignee"})
			emit(events.RecordAggregate(typ(r), rid(r)), events.RecordUpdatedV1{RecordBody: b})
		case x < 85:
			emit(events.RecordAggregate(typ(next), rid(next)), events.RecordRegisteredV1{RecordBody: body(next)})
			next++
		case x < 95:
			emit(events.PrincipalRef(pid(rnd.IntN(principals))), events.PermissionGrantedV1{
				Grant: events.Grant{Permission: "report.view", Scope: "all"}})
		default:
			emit(events.PrincipalRef(pid(rnd.IntN(principals))), events.UnitJoinedV1{
				Unit: events.UnitRef{Kind: "team", ID: fmt.Sprintf("team-%03d", rnd.IntN(40))}})
		}
	}
	return msgs, load
}

// BenchmarkAuditFollow: the audit index as its follower writes it, a few messages per batch (a
// follower that keeps up), on a fresh live index: the load of the compare shape, then half of
// the commands mix ("mix": the states the load left in memory, as after an import), then the
// index is closed and opened again, and once its scan of the state keys is done the other half
// ("cold": a restarted acld). -replay.events sets n (270000 is the compare shape's 2*10^5
// records). Reports the process's CPU per message (Pebble's compactions included), the states
// read from Pebble, the keys written and the block cache misses per message, and how long the reopened index's
// scan of its state keys took after the open returned (Pebble answers until it is done).
func BenchmarkAuditFollow(b *testing.B) {
	msgs, load := auditStream(*benchEvents)
	half := load + (len(msgs)-load)/2
	for range b.N {
		a, err := OpenAudit(filepath.Join(b.TempDir(), "audit"))
		if err != nil {
			b.Fatal(err)
		}
		phase := func(name string, from, to int) {
			cpu0, misses0, reads0 := cpuTime(), a.pb.Metrics().BlockCache.Misses, a.stateReads
			keys := 0
			// Labelled for a profile: go tool pprof -tagfocus phase=cold
			pprof.Do(context.Background(), pprof.Labels("phase", name), func(context.Context) {
				for i := from; i < to; i += 4 {
					if err := a.ApplyMessages(msgs[i:min(i+4, to)]); err != nil {
						b.Fatal(err)
					}
					keys += int(a.batch.Count())
				}
			})
			n := float64(to - from)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, name+"-cpu-us/msg")
			b.ReportMetric(float64(a.stateReads-reads0)/n, name+"-reads/msg")
			b.ReportMetric(float64(keys)/n, name+"-keys/msg")
			b.ReportMetric(float64(a.pb.Metrics().BlockCache.Misses-misses0)/n, name+"-misses/msg")
		}
		phase("load", 0, load)
		phase("mix", load, half)
		b.ReportMetric(float64(a.cache.len()), "states-held")
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
		if a, err = OpenAudit(a.dir); err != nil {
			b.Fatal(err)
		}
		start := time.Now() // the scan started when the index opened: this is less than it took
		<-a.scanned
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "scan-ms")
		if !a.states.known.Load() {
			b.Fatal("the reopened index's scan did not finish")
		}
		phase("cold", half, len(msgs))
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
