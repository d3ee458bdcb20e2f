package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// appendMore appends n messages after the last, each on a principal of its own named after
// prefix, and returns the last sequence.
func appendMore(t testing.TB, st *events.Store, prefix string, n int) uint64 {
	t.Helper()
	first := lastSeq(t, st) + 1
	appendFresh(t, st, prefix, int(first), n)
	return first + uint64(n) - 1
}

// heldFollower follows a store through a BulkLoad and counts what it was handed.
type heldFollower struct {
	mu   sync.Mutex
	c    collector
	err  error
	done chan error
}

func followYielding(t *testing.T, ctx context.Context, f events.Follower) *heldFollower {
	h := &heldFollower{done: make(chan error, 1)}
	go func() {
		h.done <- f.Follow(ctx, 1, func(ms []events.Message) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if err := h.c.add(ms); err != nil { // in order, none twice
				h.err = err
				return err
			}
			return nil
		})
	}()
	return h
}

// applied is the last sequence handed over; it fails the test on a wrong order.
func (h *heldFollower) applied(t *testing.T) uint64 {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		t.Fatal(h.err)
	}
	if len(h.c.seqs) == 0 {
		return 0
	}
	return h.c.seqs[len(h.c.seqs)-1]
}

// reaches waits until the follower has taken seq.
func (h *heldFollower) reaches(t *testing.T, seq uint64, why string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.applied(t) < seq {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the follower reached %d; want %d", why, h.applied(t), seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stays checks that the follower holds at seq for a while.
func (h *heldFollower) stays(t *testing.T, seq uint64, why string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if got := h.applied(t); got != seq {
		t.Fatalf("%s: the follower is at %d; want it held at %d", why, got, seq)
	}
}

// TestBulkLoadYields: a follower holds while a bulk load runs and it is within the lag bound,
// goes on when it falls MaxLag behind (to within MaxLag/2) or a reader wants a sequence it has
// not reached, catches up when the load ends, and takes every message once, in order.
func TestBulkLoadYields(t *testing.T) {
	env := eventstest.Start(t)
	st := env.Store
	load := &events.BulkLoad{MaxLag: 100, Quiet: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(ctxT(t))
	h := followYielding(t, ctx, load.Yielding(st))

	last := appendMore(t, st, "before", 10)
	h.reaches(t, last, "no load: live") // 10

	load.Begin()
	last = appendMore(t, st, "a", 20)
	load.End(last)
	load.Begin() // the next batch: the load still runs
	h.stays(t, 10, "20 behind, bound 100")

	last = appendMore(t, st, "b", 80) // 110: 100 behind, not more
	load.End(last)
	load.Begin()
	h.stays(t, 10, "100 behind, bound 100")
	last = appendMore(t, st, "c", 10) // 120
	load.End(last)
	load.Begin()
	h.reaches(t, last-50, "110 behind: it goes on to within MaxLag/2")

	at := h.applied(t)
	last = appendMore(t, st, "d", 30)
	load.End(last)
	load.Begin()
	h.stays(t, at, "held again")
	load.Want(at + 5)
	h.reaches(t, at+5, "a reader wants it")

	at = h.applied(t)
	last = appendMore(t, st, "e", 10)
	load.End(last)
	load.Begin()
	h.stays(t, at, "held once more")
	load.End(0) // no batch under way: the load ends Quiet later
	h.reaches(t, last, "the load ended")
	more := appendMore(t, st, "after", 5)
	h.reaches(t, more, "live again")

	cancel()
	if err := <-h.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow after cancel = %v; want context.Canceled", err)
	}
	if n := len(h.c.seqs); n != int(more) || h.c.seqs[0] != 1 {
		t.Fatalf("the follower took %d messages from %d; want 1..%d", n, h.c.seqs[0], more)
	}
}

// TestBulkLoadOff: MaxLag 0 or no BulkLoad holds nothing.
func TestBulkLoadOff(t *testing.T) {
	env := eventstest.Start(t)
	st := env.Store
	var none *events.BulkLoad
	none.Begin() // nil-safe, as the services call them
	none.Want(1)
	h := followYielding(t, ctxT(t), none.Yielding(st))
	last := appendMore(t, st, "n", 5)
	h.reaches(t, last, "no BulkLoad")
	none.End(last)

	load := &events.BulkLoad{Quiet: time.Minute}
	h = followYielding(t, ctxT(t), load.Yielding(st))
	load.Begin()
	last = appendMore(t, st, "x", 5)
	h.reaches(t, last, "MaxLag 0")
}
