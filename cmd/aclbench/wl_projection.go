package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// countingFollower counts the messages and events a projector is handed.
type countingFollower struct {
	*events.Store
	msgs, events atomic.Int64
}

func (c *countingFollower) Follow(ctx context.Context, from uint64, fn func([]events.Message) error) error {
	return c.Store.Follow(ctx, from, func(ms []events.Message) error {
		n := 0
		for i := range ms {
			n += len(ms[i].Events)
		}
		c.msgs.Add(int64(len(ms)))
		c.events.Add(int64(n))
		return fn(ms)
	})
}

// runProjection measures catching up from an empty read model: a projector of its own on a
// fresh Pebble (never the live one), following the stream until it has applied its last
// sequence. Nothing else runs meanwhile. Throughput is events/s; the latency histogram is that
// of the projector's batches (up to 4096 messages each).
func runProjection(ctx context.Context, b *bench) ([]Result, error) {
	last, err := b.st.store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	if last == 0 {
		return nil, errors.New("projection: the stream is empty")
	}
	dir, err := os.MkdirTemp(b.scratch(), "projection-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := projections.OpenDB(dir, projections.DBOptions{CacheBytes: int64(b.opt.cacheMB) << 20})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	cf := &countingFollower{Store: b.st.store}
	p, err := projections.NewProjector(db, cf)
	if err != nil {
		return nil, err
	}
	h := newHistogram()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start, cpu0 := time.Now(), processCPU()
	go func() { errc <- p.Run(ctx) }()
	// Batch latencies: the time between two advances of the applied sequence.
	prev := time.Now()
	for p.Applied() < last {
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		seen := p.Applied()
		err := p.WaitFor(wctx, seen+1)
		wcancel()
		select {
		case err := <-errc:
			return nil, fmt.Errorf("projection: projector stopped at %d of %d: %v", p.Applied(), last, err)
		default:
		}
		if err == nil {
			now := time.Now()
			h.record(now.Sub(prev))
			prev = now
		}
	}
	el, cpu := time.Since(start), processCPU()-cpu0
	cancel()
	<-errc
	o := outcome{ops: cf.events.Load(), elapsed: el, hist: h}
	r := resultOf("projection", "catch-up", "events/s", o, b.scaleOf())
	r.Latency = h.summary()
	cpuPer := cpuPerEvent(cpu, cf.events.Load())
	r.Extra = map[string]any{"messages": cf.msgs.Load(), "messages_per_s": round3(float64(cf.msgs.Load()) / el.Seconds()),
		"readmodel_mb": round3(float64(dirSize(dir)) / (1 << 20)), "cpu_us_per_event": cpuPer}
	r.Notes = append(r.Notes, fmt.Sprintf("%d events in %d messages from an empty read model in %.1fs; latency is per projector batch; %.1f process CPU-µs per event",
		cf.events.Load(), cf.msgs.Load(), el.Seconds(), cpuPer))
	return []Result{r}, nil
}

// runRebuild measures replay.Rebuild of each model into a fresh directory: what an operator's
// full rebuild costs. Throughput is events/s.
func runRebuild(ctx context.Context, b *bench) ([]Result, error) {
	var out []Result
	for _, model := range []replay.Model{replay.ModelProjections, replay.ModelAudit} {
		dir := filepath.Join(b.scratch(), fmt.Sprintf("rebuild-%s-%d", model, time.Now().UnixNano()))
		h := newHistogram()
		prev, cpu0 := time.Now(), processCPU()
		p, err := replay.Rebuild(ctx, b.st.store, dir, model, 0, func(replay.Progress) {
			now := time.Now()
			h.record(now.Sub(prev))
			prev = now
		})
		cpu := processCPU() - cpu0
		size := dirSize(dir)
		os.RemoveAll(dir)
		if err != nil {
			return out, fmt.Errorf("rebuild %s: %w", model, err)
		}
		o := outcome{ops: int64(p.Events), elapsed: p.Elapsed, hist: h}
		r := resultOf("rebuild", string(model), "events/s", o, b.scaleOf())
		r.Latency = nil // progress ticks, not operations
		cpuPer := cpuPerEvent(cpu, int64(p.Events))
		r.Extra = map[string]any{"messages": p.Done, "messages_per_s": round3(p.Rate()), "size_mb": round3(float64(size) / (1 << 20)),
			"cpu_us_per_event": cpuPer}
		r.Notes = append(r.Notes, fmt.Sprintf("%.1f process CPU-µs per event", cpuPer))
		out = append(out, r)
	}
	return out, nil
}

// processCPU is the CPU time this process has used (user and system, every thread). On a
// shared machine the CPU a workload costs per event varies far less than its throughput; in
// process it counts the embedded NATS server too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cpuPerEvent(cpu time.Duration, events int64) float64 {
	if events == 0 {
		return 0
	}
	return round3(float64(cpu.Microseconds()) / float64(events))
}

// scratch is where workloads put throw-away data: the data directory's scratch/ in-process
// (same disk as the server), the system's temp dir otherwise.
func (b *bench) scratch() string {
	if b.st != nil && !b.st.remote() {
		d := filepath.Join(b.st.cfg.dir, "scratch")
		if os.MkdirAll(d, 0o755) == nil {
			return d
		}
	}
	return os.TempDir()
}
