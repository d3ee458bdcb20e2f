package main

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestOverRSS: --max-rss-mb fails a run whose memory result is over the bound, passes one under
// it, and fails a run without a memory result rather than passing it unchecked.
func TestOverRSS(t *testing.T) {
	mem := func(mb float64) Result {
		return Result{Workload: "memory", Variant: "after-workloads", Memory: Memory{RSSMB: mb}}
	}
	cases := []struct {
		results []Result
		max     float64
		fails   bool
	}{
		{[]Result{mem(250)}, 300, false},
		{[]Result{mem(350)}, 300, true},
		{[]Result{{Workload: "check"}}, 300, true},
		{[]Result{mem(9999)}, 0, false}, // no bound asked
	}
	for _, tc := range cases {
		r := &Report{Results: tc.results}
		if err := r.overRSS(tc.max); (err != nil) != tc.fails {
			t.Errorf("%+v with max %v: %v, want failure %v", tc.results, tc.max, err, tc.fails)
		}
	}
}

// TestMemoryIdle: with --memory-idle the memory workload waits that long before it reads the
// memory, and names its result so.
func TestMemoryIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and Pebble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := tinyOptions(t.TempDir(), "fast")
	o.memoryIdle = 300 * time.Millisecond
	ws, err := selectWorkloads("memory")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := runOnce(ctx, o, ws, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Workload != "memory" {
			continue
		}
		if r.Variant != "after-workloads-idle-300ms" || time.Since(start) < o.memoryIdle || r.Memory.RSSMB == 0 {
			t.Fatalf("memory result %q %+v after %v", r.Variant, r.Memory, time.Since(start))
		}
		return
	}
	t.Fatal("no memory result")
}
