package projections

import (
	"context"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

// openDB opens a read model in a fresh temporary directory, closed at cleanup.
func openDB(t testing.TB) *DB {
	t.Helper()
	return openDBAt(t, t.TempDir())
}

func openDBAt(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := OpenDB(dir, DBOptions{CacheBytes: 8 << 20, MemTableBytes: 4 << 20})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runProjector runs a projector over db following st until cleanup, and returns it.
func runProjector(t testing.TB, db *DB, st *events.Store) *Projector {
	t.Helper()
	p, err := NewProjector(db, st)
	if err != nil {
		t.Fatalf("new projector: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	return p
}

// waitApplied waits until p has applied seq, failing the test after a deadline.
func waitApplied(t testing.TB, p *Projector, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, seq); err != nil {
		t.Fatalf("projector stuck at %d, want %d: %v", p.Applied(), seq, err)
	}
}

// applyAll feeds msgs to a projector without a store, in slices of size n.
func applyAll(t testing.TB, p *Projector, msgs []events.Message, n int) {
	t.Helper()
	for i := 0; i < len(msgs); i += n {
		if err := p.ApplyMessages(msgs[i:min(i+n, len(msgs))]); err != nil {
			t.Fatalf("apply messages %d..: %v", i, err)
		}
	}
}
