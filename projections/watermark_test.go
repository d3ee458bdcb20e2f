package projections

import (
	"context"
	"testing"
	"time"
)

// TestWatermark: it only advances, a waiter returns once its sequence is reached (not before),
// and a wait ends with its context.
func TestWatermark(t *testing.T) {
	var w Watermark
	done := make(chan error, 1)
	go func() { done <- w.WaitFor(context.Background(), 5) }()
	w.Advance(3)
	select {
	case err := <-done:
		t.Fatalf("returned at 3 waiting for 5: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.Advance(7)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.Advance(4); w.Load() != 7 {
		t.Fatalf("went back to %d", w.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := w.WaitFor(ctx, 8); err == nil {
		t.Fatal("a wait past the watermark ended without its context")
	}
}
