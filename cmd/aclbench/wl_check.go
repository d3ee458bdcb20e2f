package main

import (
	"context"
	"fmt"
	"time"
)

// checkTargetCount is how many distinct questions a check run cycles through: enough that the
// answers do not all sit in the CPU caches, few enough to draw in a blink.
const checkTargetCount = 1 << 14

// runCheck measures check by one way (inprocess, http, nats) with opt.workers callers (for
// HTTP, one keep-alive connection each).
func runCheck(ctx context.Context, b *bench, via string) ([]Result, error) {
	q, done, err := b.querier(ctx, via)
	if err != nil {
		return nil, err
	}
	defer done()
	targets := b.ds.checkTargets(checkTargetCount)
	workers := b.workersFor(via)
	allowed := make([]counter, workers) // one per worker: no shared cache line in the loop
	// Latency by kind of question as well, to tell which kind costs what.
	byKind := make([][]*histogram, workers)
	for w := range byKind {
		for range checkKinds {
			byKind[w] = append(byKind[w], newHistogram())
		}
	}
	fn := func(ctx context.Context, w int, i int64) error {
		t := &targets[i%int64(len(targets))]
		t0 := time.Now()
		ok, err := q.check(ctx, t.tenant, t.q, 0)
		if i < warmupBase {
			byKind[w][t.kind].record(time.Since(t0))
			if ok {
				allowed[w].n++
			}
		}
		return err
	}
	o := drive(ctx, driveSpec{workers: workers, duration: b.opt.duration, warmup: b.opt.warmup}, fn)
	r := resultOf("check", fmt.Sprintf("%s/workers=%d", via, workers), "checks/s", o, b.scaleOf())
	r.Extra = map[string]any{"allowed_share": round3(perOp(allowed, o.ops))}
	for k, name := range checkKinds {
		h := newHistogram()
		for w := range byKind {
			h.merge(byKind[w][k])
		}
		if l := h.summary(); l != nil {
			r.Extra["latency_us_"+name] = l
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d%% of checks, p50 %s µs, p99 %s µs", name,
				100*h.n/uint64(max(o.ops, 1)), fmtUS(l.P50), fmtUS(l.P99)))
		}
	}
	return []Result{r}, nil
}

// workersFor is the callers of a query workload: --workers, or what suits the way (an
// in-process engine saturates the cores with one caller per core; HTTP and NATS need more
// callers than cores to hide the round trip).
func (b *bench) workersFor(via string) int {
	if b.opt.workers > 0 {
		return b.opt.workers
	}
	if via == "inprocess" {
		return 2
	}
	return 32
}

// counter is a per-worker count on its own cache line.
type counter struct {
	n int64
	_ [56]byte
}

// perOp is the sum of the counters per operation.
func perOp(cs []counter, ops int64) float64 {
	if ops == 0 {
		return 0
	}
	var n int64
	for _, c := range cs {
		n += c.n
	}
	return float64(n) / float64(ops)
}
