package main

import (
	"slices"
	"testing"
	"time"
)

func TestIdleTrim(t *testing.T) {
	const mb = 1 << 20
	steps := []struct {
		allocs uint64 // cumulative
		want   bool
	}{
		{0, true}, // idle from the start: first collection
		{1 * mb, true},
		{2 * mb, true},
		{3 * mb, true},
		{4 * mb, true},
		{5 * mb, true},    // the sixth
		{6 * mb, false},   // done for this idle period
		{7 * mb, false},   // and stays done
		{100 * mb, false}, // busy: 93 MB in a tick
		{101 * mb, true},  // idle again: a new period starts
		{102 * mb, true},
		{200 * mb, false}, // busy in the middle of a period resets it
		{201 * mb, true},
	}
	var tr idleTrim
	for i, s := range steps {
		if got := tr.tick(s.allocs); got != s.want {
			t.Fatalf("step %d (allocs %d MB): trim = %v, want %v", i, s.allocs/mb, got, s.want)
		}
	}
}

// TestIdleTrimLate: one more trim once an idle period has lasted lateTrim (what nats-server
// drops after 2 minutes), and only once; a busy tick starts the count again.
func TestIdleTrimLate(t *testing.T) {
	const mb = 1 << 20
	tr := newIdleTrim(30*time.Second, 0) // 150 s: the fifth tick, among the first six
	if tr.late != 5 {
		t.Fatalf("late = %d ticks, want 5", tr.late)
	}
	tr = newIdleTrim(10*time.Second, 0)
	if tr.late != 15 {
		t.Fatalf("late = %d ticks, want 15", tr.late)
	}
	var allocs uint64
	for period := 0; period < 2; period++ {
		var got []int
		for i := 1; i <= 30; i++ {
			allocs += mb
			if tr.tick(allocs) {
				got = append(got, i)
			}
		}
		if want := []int{1, 2, 3, 4, 5, 6, 15}; !slices.Equal(got, want) {
			t.Fatalf("period %d: trims at idle ticks %v, want %v", period, got, want)
		}
		allocs += 100 * mb // busy
		if tr.tick(allocs) {
			t.Fatal("trimmed on a busy tick")
		}
	}
}
