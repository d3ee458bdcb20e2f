package projections

import (
	"testing"
	"time"
)

// TestFeedCPUBudget: the token bucket behind FeedOptions.CPU lets a burst through, refuses work
// once it is spent (even below zero, after one expensive message) and allows it again when
// time has refilled it at its rate; a negative rate never refuses.
func TestFeedCPUBudget(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := cpuBudget{rate: 0.25, tokens: 500 * time.Millisecond}
	if !b.allow(t0) {
		t.Fatal("a full bucket refused work")
	}
	b.spend(800 * time.Millisecond)   // one expensive message: 300 ms owed
	if b.allow(t0.Add(time.Second)) { // +250 ms: still 50 ms owed
		t.Fatal("allowed before the debt was refilled")
	}
	if !b.allow(t0.Add(1300 * time.Millisecond)) { // +75 ms more
		t.Fatal("refused once refilled")
	}
	if b.allow(t0.Add(time.Hour)); b.tokens != 500*time.Millisecond {
		t.Fatalf("tokens %v after an hour, want the cap of 500ms", b.tokens)
	}
	u := cpuBudget{rate: -1}
	u.spend(time.Hour)
	if !u.allow(t0) {
		t.Fatal("an unbounded budget refused work")
	}
}
