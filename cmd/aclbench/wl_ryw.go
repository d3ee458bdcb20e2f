package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// rywWorkers is how many services write-then-read at once by default.
const rywWorkers = 4

// errStale is a check with min_seq that did not see the write it waited for: a consistency bug,
// counted apart from the latency.
var errStale = errors.New("read-your-writes: the check after the write was not allowed")

// runRYW measures read-your-writes: a service assigns a principal at level limited to a record
// it could not see (AssignRecord through the command path), then asks check with min_seq set to
// the command's answer. The latency is from the command's answer to the check's answer (what
// the waiting for the projector costs the service); the command's own latency is in extra.
// Every check must be allowed: one that is not is counted as error "stale".
func runRYW(ctx context.Context, b *bench) ([]Result, error) {
	q, done, err := b.querier(ctx, b.opt.via)
	if err != nil {
		return nil, err
	}
	defer done()
	// pair is one write-then-read: assign principal to assign, then check perm on rec. They are
	// the same record unless --ryw-link, where assign is the record rec links to (the command
	// workload's UpdateRecord keeps a record's generated links, so the link holds in any run).
	type pair struct {
		tenant    string
		principal string
		assign    events.RecordRef
		rec       events.RecordRef
		perm      string
	}
	var pairs []pair
	for _, t := range b.ds.Tenants {
		ps := t.principalsOf(aggregates.LevelLimited, 256)
		for k, idx := range t.probeIndexes(1024, 11) {
			if len(ps) == 0 {
				break
			}
			body := t.Record(idx)
			rec := events.RecordRef{Type: body.Type, ID: body.ID}
			assign := rec
			if b.opt.rywLink {
				if len(body.Links) == 0 {
					continue
				}
				assign = body.Links[0]
			}
			pairs = append(pairs, pair{t.ID, ps[k%len(ps)], assign, rec, t.prof.probe.perm})
		}
	}
	if len(pairs) == 0 {
		if b.opt.rywLink {
			return nil, errors.New("ryw --ryw-link: no record of the probe type links to another, or no principal at level limited with the probe role")
		}
		return nil, errors.New("ryw: no principal at level limited with the probe role, or no record of the probe type")
	}
	workers := b.opt.workers
	if workers <= 0 {
		workers = rywWorkers
	}
	clients := make([]*commands.Client, workers)
	for k := range clients {
		nc, err := b.st.connect()
		if err != nil {
			return nil, err
		}
		clients[k] = commands.NewClient(nc)
	}
	cmdHists := make([]*histogram, workers)
	for k := range cmdHists {
		cmdHists[k] = newHistogram()
	}
	// The drive measures the whole write-then-read; the part after the answer is kept apart.
	after := make([]*histogram, workers)
	for k := range after {
		after[k] = newHistogram()
	}
	fn := func(ctx context.Context, w int, i int64) error {
		p := pairs[i%int64(len(pairs))]
		relation := fmt.Sprintf("ryw-%s-%d", b.opt.run, i) // new each time: the command always writes
		t0 := time.Now()
		res, err := clients[w].Do(ctx, p.tenant, &aggregates.AssignRecord{CommandBase: aggregates.CommandBase{Actor: Admin},
			Type: p.assign.Type, ID: p.assign.ID, Principal: p.principal, Relation: relation})
		t1 := time.Now()
		cmdHists[w].record(t1.Sub(t0))
		if err != nil {
			return err
		}
		ok, err := q.check(ctx, p.tenant, projections.CheckQuery{Principal: p.principal, Permission: p.perm, Record: &p.rec}, res.Seq)
		after[w].record(time.Since(t1))
		if err == nil && !ok {
			return errStale
		}
		return err
	}
	o := drive(ctx, driveSpec{workers: workers, duration: b.opt.duration}, fn)
	total, cmd, ryw := o.hist, newHistogram(), newHistogram()
	for k := range workers {
		cmd.merge(cmdHists[k])
		ryw.merge(after[k])
	}
	o.hist = ryw
	variant := fmt.Sprintf("%s/workers=%d", b.opt.via, workers)
	if b.opt.rywLink {
		variant += "/link"
	}
	r := resultOf("ryw", variant, "writes+reads/s", o, b.scaleOf())
	r.Extra = map[string]any{"command_latency_us": cmd.summary(), "total_latency_us": total.summary()}
	if n := o.errors["other"]; n > 0 && errors.Is(o.lastErr, errStale) {
		r.Notes = append(r.Notes, fmt.Sprintf("%d checks with min_seq did not see their write", n))
	}
	return []Result{r}, nil
}
