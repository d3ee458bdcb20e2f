package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// visibleCallers is how many principals of each class the first-page variants rotate through.
const visibleCallers = 64

// runVisible measures the visible query on the probe type of each tenant (trackops cases,
// reconpro work orders, probuild projects):
//
//   - first-page-full: the first page (100) for principals at level full, whose scope is all:
//     the answer is the first 100 records of the type, whatever their number;
//   - first-page-limited: the first page for principals at level limited: only what they are
//     assigned to (directly or through a link), a merge of their assignee index ranges;
//   - full-listing: every page (1000 each) to the end for a full principal: the cost of
//     listing everything, per page and in total.
func runVisible(ctx context.Context, b *bench) ([]Result, error) {
	q, done, err := b.querier(ctx, b.opt.via)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Result
	for _, level := range []string{aggregates.LevelFull, aggregates.LevelLimited} {
		type caller struct {
			tenant string
			q      projections.VisibleQuery
		}
		var callers []caller
		for _, t := range b.ds.Tenants {
			for _, p := range t.principalsOf(level, visibleCallers) {
				callers = append(callers, caller{t.ID, projections.VisibleQuery{Principal: p, Type: t.prof.probe.typ}})
			}
		}
		if len(callers) == 0 {
			continue
		}
		workers := b.workersFor(b.opt.via)
		ids := make([]counter, workers)
		fn := func(ctx context.Context, w int, i int64) error {
			c := callers[i%int64(len(callers))]
			a, err := q.visible(ctx, c.tenant, c.q)
			if i < warmupBase {
				ids[w].n += int64(len(a.IDs))
			}
			return err
		}
		o := drive(ctx, driveSpec{workers: workers, duration: b.opt.duration, warmup: b.opt.warmup}, fn)
		r := resultOf("visible", fmt.Sprintf("first-page-%s/%s/workers=%d", level, b.opt.via, workers), "queries/s", o, b.scaleOf())
		r.Extra = map[string]any{"ids_per_answer": round3(perOp(ids, o.ops))}
		r.Notes = append(r.Notes, fmt.Sprintf("%d principals at level %s, %.1f ids per answer", len(callers), level, perOp(ids, o.ops)))
		out = append(out, r)
	}
	listing, err := visibleListing(ctx, b, q)
	if err != nil {
		return out, err
	}
	return append(out, listing...), nil
}

// visibleListing pages through everything one full principal of each tenant sees.
func visibleListing(ctx context.Context, b *bench, q querier) ([]Result, error) {
	var out []Result
	for _, t := range b.ds.Tenants {
		ps := t.principalsOf(aggregates.LevelFull, 1)
		if len(ps) == 0 {
			continue
		}
		h := newHistogram()
		vq := projections.VisibleQuery{Principal: ps[0], Type: t.prof.probe.typ, Limit: 1000}
		total, pages := 0, 0
		start := time.Now()
		for {
			t0 := time.Now()
			a, err := q.visible(ctx, t.ID, vq)
			h.record(time.Since(t0))
			if err != nil {
				return out, fmt.Errorf("visible listing for %s: %w", ps[0], err)
			}
			pages++
			total += len(a.IDs)
			if a.NextCursor == "" {
				break
			}
			vq.Cursor = a.NextCursor
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
		el := time.Since(start)
		o := outcome{ops: int64(pages), elapsed: el, hist: h}
		r := resultOf("visible", fmt.Sprintf("full-listing/%s/%s", b.opt.via, t.prof.probe.typ), "pages/s", o, b.scaleOf())
		r.Extra = map[string]any{"ids": total, "ids_per_s": round3(float64(total) / el.Seconds()), "total_ms": round3(float64(el.Microseconds()) / 1e3)}
		r.Notes = append(r.Notes, fmt.Sprintf("%s lists %d %s records in %d pages of 1000 in %.0f ms", ps[0], total, t.prof.probe.typ, pages, float64(el.Microseconds())/1e3))
		out = append(out, r)
	}
	return out, nil
}

// principalsTargets is how many records the principals workload asks about.
const principalsTargets = 2048

// runPrincipals measures who may view a record: its cost follows the number of principals
// holding a role or grant of the permission (each is decided), not the number of records.
func runPrincipals(ctx context.Context, b *bench) ([]Result, error) {
	q, done, err := b.querier(ctx, b.opt.via)
	if err != nil {
		return nil, err
	}
	defer done()
	targets := b.ds.recordTargets(principalsTargets, 7)
	if len(targets) == 0 {
		return nil, errors.New("principals: the data set has no records")
	}
	workers := b.workersFor(b.opt.via)
	allowed := make([]counter, workers)
	fn := func(ctx context.Context, w int, i int64) error {
		t := targets[i%int64(len(targets))]
		a, err := q.principals(ctx, t.tenant, projections.PrincipalsQuery{Record: t.rec, Permission: t.perm})
		if i < warmupBase {
			allowed[w].n += int64(len(a.Principals))
		}
		return err
	}
	o := drive(ctx, driveSpec{workers: workers, duration: b.opt.duration, warmup: b.opt.warmup}, fn)
	r := resultOf("principals", fmt.Sprintf("%s/workers=%d", b.opt.via, workers), "queries/s", o, b.scaleOf())
	r.Extra = map[string]any{"principals_per_answer": round3(perOp(allowed, o.ops))}
	return []Result{r}, nil
}
