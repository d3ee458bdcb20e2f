package projections

import (
	"context"
	"sync"
	"sync/atomic"
)

// Watermark is a stream sequence that only advances, and that callers can wait for: the
// sequence the projector has applied, the audit index has applied, the change feed has
// published. Its zero value is at 0.
type Watermark struct {
	seq      atomic.Uint64
	mu       sync.Mutex
	advanced chan struct{} // closed and replaced each time seq advances; nil until waited on
}

// Load is the sequence reached.
func (w *Watermark) Load() uint64 { return w.seq.Load() }

// Advance moves the watermark to seq, if that is further, and wakes the waiters.
func (w *Watermark) Advance(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq <= w.seq.Load() {
		return
	}
	w.seq.Store(seq)
	if w.advanced != nil {
		close(w.advanced)
		w.advanced = nil
	}
}

// WaitFor returns once the watermark reaches seq, or ctx's error.
func (w *Watermark) WaitFor(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		if w.seq.Load() >= seq {
			w.mu.Unlock()
			return nil
		}
		if w.advanced == nil {
			w.advanced = make(chan struct{})
		}
		ch := w.advanced
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
