package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// workload is one named measurement of `aclbench run`.
type workload struct {
	name  string
	about string
	run   func(ctx context.Context, b *bench) ([]Result, error)
	// live: measured with the server's read side running and caught up (as acld runs), which
	// the run starts before the workload (and its profile) begins.
	live bool
}

// workloads in the order `run all` runs them: the ones that only read the stream first (they
// start their own read models), then the queries on the loaded data, then the ones that write.
var workloads = []workload{
	{"projection", "catch-up of a fresh read model from the stream (events/s)", runProjection, false},
	{"rebuild", "replay.Rebuild of the projections and the audit index (events/s)", runRebuild, false},
	{"check", "check in-process on the engine (--workers callers)", func(ctx context.Context, b *bench) ([]Result, error) {
		return runCheck(ctx, b, "inprocess")
	}, true},
	{"check-nats", "check as NATS requests on acl.queries.<tenant>.check", func(ctx context.Context, b *bench) ([]Result, error) {
		return runCheck(ctx, b, "nats")
	}, true},
	{"check-http", "check over HTTP, one keep-alive connection per caller", func(ctx context.Context, b *bench) ([]Result, error) {
		return runCheck(ctx, b, "http")
	}, true},
	{"visible", "visible first page (full and limited principals) and a full listing (--via)", runVisible, true},
	{"principals", "who may view a record (--via)", runPrincipals, true},
	{"asof", "as_of at random moments via replay checkpoints, then a check", runAsOf, true},
	{"console", "the auditor's console: each page over HTTP, one auditor at a time", runConsole, true},
	{"ryw", "read-your-writes: AssignRecord, then check with min_seq (--via)", runRYW, true},
	{"commands", "the steady-state command mix with each --clients count", runCommands, true},
	{"memory", "RSS and Go heap after the workloads run before it", runMemory, true},
}

func findWorkload(name string) (workload, bool) {
	for _, w := range workloads {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

// selectWorkloads reads "all" or a comma-separated list into workloads, in the list's order.
func selectWorkloads(spec string) ([]workload, error) {
	if spec == "all" {
		return workloads, nil
	}
	var out []workload
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		w, ok := findWorkload(name)
		if !ok {
			return nil, fmt.Errorf("unknown workload %q; known: %s, or all", name, strings.Join(workloadNames(), ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

func workloadNames() []string {
	var ns []string
	for _, w := range workloads {
		ns = append(ns, w.name)
	}
	return ns
}

// runMemory reports the process's memory after the workloads before it, the read model
// caught up: the RSS aim applies here.
func runMemory(ctx context.Context, b *bench) ([]Result, error) {
	if !b.st.remote() {
		if err := b.readSide(ctx); err != nil {
			return nil, err
		}
	}
	variant := "after-workloads"
	if d := b.opt.memoryIdle; d > 0 {
		// A server at rest after the workloads: acld drops its caches 60 s into an idle period.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		variant = "after-workloads-idle-" + d.String()
	}
	runtime.GC()
	r := Result{Workload: "memory", Variant: variant, Records: b.ds.Scale.Records, Principals: b.ds.Scale.Principals,
		Memory: readMemory()}
	if !b.st.remote() {
		r.Extra = map[string]any{"disk_mb": round3(float64(dirSize(b.st.cfg.dir)) / (1 << 20))}
	}
	r.Aims = checkAims(r)
	return []Result{r}, nil
}

// needsReplay reports whether a selection needs the replay service with the read side.
func needsReplay(ws []workload) bool {
	return slices.ContainsFunc(ws, func(w workload) bool { return w.name == "asof" || w.name == "console" })
}
