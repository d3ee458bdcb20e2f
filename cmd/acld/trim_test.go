package main

import "testing"

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
