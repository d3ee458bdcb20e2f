package main

import (
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCLimit(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name                      string
		live, held, free, objects uint64
		pct                       int
		want                      int64
	}{
		// 300 MB live, 40 MB of the heap's objects not yet swept, 60 MB of free slots,
		// stacks and runtime, 100 MB of free pages: 60 + 300 + 75.
		{"quarter", 300 * mb, 500 * mb, 100 * mb, 340 * mb, 25, 435 * mb},
		{"half", 300 * mb, 500 * mb, 100 * mb, 340 * mb, 50, 510 * mb},
		{"small heap gets the least headroom", 10 * mb, 30 * mb, 0, 12 * mb, 25, (18 + 10 + 32) * mb},
		{"overhead never negative", 100 * mb, 100 * mb, 10 * mb, 120 * mb, 25, (100 + 32) * mb},
	} {
		if got := gcLimit(c.live, c.held, c.free, c.objects, c.pct); got != c.want {
			t.Errorf("%s: limit %d MB, want %d MB", c.name, got/mb, c.want/mb)
		}
	}
}

// TestTuneGCFollowsLiveHeap: after a collection the limit is the live heap and its overhead
// plus the headroom; it comes down when the live heap does, and stop puts the limit back.
func TestTuneGCFollowsLiveHeap(t *testing.T) {
	const mb = 1 << 20
	if before := debug.SetMemoryLimit(-1); before != math.MaxInt64 {
		t.Skipf("a memory limit is set already (%d)", before)
	}
	stop := tuneGC(50, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	// limitAfterGC collects until the cleanup has set a limit different from prev.
	limitAfterGC := func(prev int64) int64 {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			if l := debug.SetMemoryLimit(-1); l != prev {
				return l
			}
		}
		t.Fatalf("the limit stayed %d after collections", prev)
		return 0
	}
	live := make([][]byte, 0, 256)
	for range 256 {
		live = append(live, make([]byte, mb))
	}
	high := limitAfterGC(math.MaxInt64)
	// 256 MB live: at least that plus half of it, and far below twice it.
	if high < 384*mb || high > 480*mb {
		t.Fatalf("limit with 256 MB live: %d MB, want 384-480", high/mb)
	}
	runtime.KeepAlive(live)
	live = nil
	low := limitAfterGC(high)
	if low > 200*mb {
		t.Fatalf("limit once the 256 MB are garbage: %d MB, want under 200", low/mb)
	}
	stop()
	stopped = true
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Fatalf("limit after stop: %d, want none", l)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Fatalf("limit set again after stop: %d", l)
	}
}
