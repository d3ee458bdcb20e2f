package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// driveSpec says how hard and how long to drive an operation: a closed loop of workers, each
// issuing its next operation when the previous one answers (so the latency is what a caller
// with that much concurrency sees, and the throughput is what the system gives it).
type driveSpec struct {
	workers  int
	duration time.Duration // stop after this long
	ops      int64         // or after this many operations (0: by duration only)
	warmup   time.Duration // run this long first, unmeasured (caches, connections, JIT of the OS)
}

// outcome is what a drive measured.
type outcome struct {
	ops     int64
	errors  map[string]int64 // by error code; "other" without one
	elapsed time.Duration
	hist    *histogram
	lastErr error
}

func (o outcome) throughput() float64 {
	if o.elapsed <= 0 {
		return 0
	}
	return float64(o.ops) / o.elapsed.Seconds()
}

// warmupBase is where the warm-up's operation indexes start: an op can tell them apart.
const warmupBase = 1 << 40

// op is one operation of worker w; i counts the operations across workers (unique, from 0).
type op func(ctx context.Context, w int, i int64) error

// drive runs fn with spec.workers workers and measures every call. Failed calls are counted by
// code and their latency recorded all the same (an error answer is an answer).
func drive(ctx context.Context, spec driveSpec, fn op) outcome {
	spec.workers = max(spec.workers, 1)
	if spec.warmup > 0 {
		w := spec
		w.warmup, w.ops, w.duration = 0, 0, spec.warmup
		run(ctx, w, fn, warmupBase) // indexes far from the measured ones
	}
	return run(ctx, spec, fn, 0)
}

func run(ctx context.Context, spec driveSpec, fn op, base int64) outcome {
	// stop ends the issuing of new operations; operations in flight finish with ctx, so a run
	// of slow operations (a principals query at 10^5 principals takes seconds) still measures
	// every one it started, and the elapsed time covers them.
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	if spec.duration > 0 {
		var c context.CancelFunc
		stop, c = context.WithTimeout(stop, spec.duration)
		defer c()
	}
	var next atomic.Int64
	hs := make([]*histogram, spec.workers)
	errs := make([]map[string]int64, spec.workers)
	var lastErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range spec.workers {
		hs[w], errs[w] = newHistogram(), map[string]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, em := hs[w], errs[w]
			for stop.Err() == nil {
				i := next.Add(1) - 1
				if spec.ops > 0 && i >= spec.ops {
					return
				}
				t0 := time.Now()
				err := fn(ctx, w, base+i)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return // the whole run was cancelled: not an answer
					}
					em[errorCode(err)]++
					lastErr.Store(errBox{err})
				}
				h.record(d)
			}
		}()
	}
	wg.Wait()
	o := outcome{elapsed: time.Since(start), hist: newHistogram(), errors: map[string]int64{}}
	for w := range spec.workers {
		o.hist.merge(hs[w])
		for k, v := range errs[w] {
			o.errors[k] += v
		}
	}
	o.ops = int64(o.hist.n)
	if b, ok := lastErr.Load().(errBox); ok {
		o.lastErr = b.err
	}
	return o
}

// errBox lets atomic.Value hold errors of different concrete types.
type errBox struct{ err error }

// errorCode is the product's error code of err, "other" when it has none.
func errorCode(err error) string {
	var e *aggregates.Error
	if errors.As(err, &e) && e.Code != "" {
		return string(e.Code)
	}
	var q *queryError
	if errors.As(err, &q) && q.Code != "" {
		return q.Code
	}
	return "other"
}
