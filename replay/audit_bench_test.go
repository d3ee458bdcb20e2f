package replay

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// auditStream makes the messages of the compare shape for the audit index alone, in memory (no
// stream: what is measured is the index's own work): one trackops tenant, n/20 principals, then
// 3n/4 records, cases and invoices in turn, each invoice linking a random case (some not
// registered yet, as in aclbench's data sets), then until n the commands workload's mix on
// random records: assignments, updates and new records. load is the number of messages before
// the mix.
func auditStream(n int) (msgs []events.Message, load int) {
	rnd := rand.New(rand.NewPCG(7, 8))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(ref events.AggregateRef, ds ...events.Data) {
		seq := uint64(len(msgs) + 1)
		now = now.Add(time.Millisecond)
		m := events.Message{Seq: seq, Time: now}
		for _, d := range ds {
			e, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin",
				CommandID: fmt.Sprintf("00000000-0000-7000-8000-%012d", seq), Time: now}, d)
			if err != nil {
				panic(err)
			}
			e.Seq = seq
			m.Events = append(m.Events, e)
		}
		subject, err := events.Subject("acme", ref)
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
	emit(events.TenantRef("acme"), preset)
	principals, records := max(n/20, 10), max(n*3/4, 10)
	pid := func(i int) string { return fmt.Sprintf("p-%07d", i) }
	for i := range principals {
		emit(events.PrincipalRef(pid(i)), events.PrincipalRegisteredV1{Principal: pid(i), Kind: "staff",
			Email: pid(i) + "@x.test"}, events.RoleAssignedV1{Role: "staff"})
	}
	typ := func(i int) string { return []string{"case", "invoice"}[i%2] }
	rid := func(i int) string { return fmt.Sprintf("%s-%08d", typ(i), i) }
	body := func(i int) events.RecordBody {
		b := events.RecordBody{Type: typ(i), ID: rid(i), Client: fmt.Sprintf("client-%05d", rnd.IntN(1000)),
			Assignees: []events.Assignee{{Principal: pid(rnd.IntN(principals)), Relation: "assignee"}}}
		if typ(i) == "invoice" {
			b.Links = []events.RecordRef{{Type: "case", ID: rid(2 * rnd.IntN(records/2))}}
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
		case x < 55:
			emit(events.RecordAggregate(typ(r), rid(r)), events.RecordAssignedV2{Principal: pid(rnd.IntN(principals)), Relation: "assignee"})
		case x < 70:
			emit(events.RecordAggregate(typ(r), rid(r)), events.RecordUpdatedV1{RecordBody: body(r)})
		default:
			emit(events.RecordAggregate(typ(next), rid(next)), events.RecordRegisteredV1{RecordBody: body(next)})
			next++
		}
	}
	return msgs, load
}

// BenchmarkAuditFollow: the audit index as its follower writes it, a few messages per batch (a
// follower that keeps up), on a fresh live index: the load of the compare shape, then the
// commands mix. -replay.events sets n (270000 is the compare shape's 2*10^5 records). Reports
// the process's CPU per message (Pebble's compactions included), the block cache misses, and
// how long the reopened index's scan of its state keys takes after the open returns (Pebble answers until it is done).
func BenchmarkAuditFollow(b *testing.B) {
	msgs, load := auditStream(*benchEvents)
	for range b.N {
		a, err := OpenAudit(filepath.Join(b.TempDir(), "audit"))
		if err != nil {
			b.Fatal(err)
		}
		for _, phase := range []struct {
			name     string
			from, to int
		}{{"load", 0, load}, {"mix", load, len(msgs)}} {
			cpu0, misses0 := cpuTime(), a.pb.Metrics().BlockCache.Misses
			for i := phase.from; i < phase.to; i += 4 {
				if err := a.ApplyMessages(msgs[i:min(i+4, phase.to)]); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(phase.to - phase.from)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/n, phase.name+"-cpu-us/msg")
			b.ReportMetric(float64(a.pb.Metrics().BlockCache.Misses-misses0)/n, phase.name+"-misses/msg")
		}
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
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
