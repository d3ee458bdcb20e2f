package replay

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/acl-es/acl/events/eventstest"
)

// TestAsOfSharedBase: once the newest checkpoint is open as the shared base, answers at moments
// after any checkpoint it links read it as of that checkpoint (its tables tagged with their
// applied sequences) instead of opening the checkpoint: no other base is opened, and every
// answer, at random moments, at checkpoints and next to them, equals the pure evaluator's.
func TestAsOfSharedBase(t *testing.T) {
	const every = 7
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 1})
	h := newRandomHistory(s.d, 31)
	s.d.tenant("beta", "probuild") // another tenant's events between: skipped by the replay
	for i := range 8 {
		h.run(30)
		s.d.staff("beta", fmt.Sprintf("b%d", i), "full", "worker")
	}
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	last := s.d.seq
	moments := []uint64{1, last}
	for _, c := range s.svc.ckpts.list()[:4] {
		moments = append(moments, c, c+1, c-1)
	}
	rnd := rand.New(rand.NewPCG(5, 8))
	for range 30 {
		moments = append(moments, 1+rnd.Uint64N(last))
	}
	for _, seq := range moments {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	s.svc.bases.mu.Lock()
	used, open := s.svc.bases.sharedUsed, slices.Collect(maps.Keys(s.svc.bases.open))
	shared := s.svc.bases.shared.seq // its own base: opened once
	s.svc.bases.mu.Unlock()
	// Moments before the first checkpoint start from the empty model (base 0); those after the
	// shared base's checkpoint (none here) would open theirs. States taken over open nothing.
	if used < len(moments)/2 || slices.ContainsFunc(open, func(seq uint64) bool { return seq != 0 && seq != shared }) {
		t.Errorf("%d of %d answers read the shared base; bases opened besides: %v", used, len(moments), open)
	}
}

// TestAsOfUntaggedChain: a chain whose tables carry no applied sequence (made by a release
// before the tags) is not read as of its checkpoints: each answer opens its checkpoint, and
// answers stay exact.
func TestAsOfUntaggedChain(t *testing.T) {
	fillDB.TagApplied = false
	defer func() { fillDB.TagApplied = true }()
	const every = 10
	s := startStack(t, Options{CheckpointEvery: every})
	newRandomHistory(s.d, 32).run(120)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	requireOracleAt(t, s, Moment{Seq: 15}, 15)
	eventstest.WaitFor(t, 30*time.Second, func() error {
		s.svc.bases.mu.Lock()
		defer s.svc.bases.mu.Unlock()
		if !s.svc.bases.sharedOff {
			return fmt.Errorf("the untagged chain is still tried as the shared base")
		}
		return nil
	})
	for _, seq := range []uint64{12, 33, 47, s.d.seq} {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	s.svc.bases.mu.Lock()
	used := s.svc.bases.sharedUsed
	s.svc.bases.mu.Unlock()
	if used != 0 {
		t.Errorf("%d answers read an untagged chain as the shared base", used)
	}
}

// waitShared asks once (which opens the shared base in the background) and waits until it is
// open on the newest checkpoint.
func waitShared(t *testing.T, s *stack) {
	t.Helper()
	requireOracleAt(t, s, Moment{Seq: 1}, 1)
	eventstest.WaitFor(t, 30*time.Second, func() error {
		s.svc.bases.mu.Lock()
		defer s.svc.bases.mu.Unlock()
		if sh := s.svc.bases.shared; sh == nil || sh.seq != s.svc.ckpts.last() {
			return fmt.Errorf("no shared base on the newest checkpoint %d", s.svc.ckpts.last())
		}
		return nil
	})
}

// waitVersions waits until the state versions have reached the newest checkpoint (filled from
// the shared base in the background once it is open: waitShared first).
func waitVersions(t *testing.T, s *stack) {
	t.Helper()
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if got, want := s.svc.bases.versions.Applied(), s.svc.ckpts.last(); got < want {
			return fmt.Errorf("the state versions have reached %d, not the newest checkpoint %d", got, want)
		}
		return nil
	})
}

// TestAsOfSharedBaseFlushes: a moment after a checkpoint that thinning removed starts from that
// checkpoint's flush in the shared base (its table is still linked by the newer checkpoints),
// not from the checkpoint before it, and answers equal the pure evaluator's.
func TestAsOfSharedBaseFlushes(t *testing.T) {
	const every = 10
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 8})
	newRandomHistory(s.d, 33).run(150)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	for _, c := range []uint64{30, 40, 60} {
		s.svc.ckpts.mu.Lock()
		err := s.svc.ckpts.remove(c)
		s.svc.ckpts.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []uint64{33, 45, 41, 60, 69, 31} {
		if got := s.svc.bases.floor(seq); got != seq/every*every {
			t.Errorf("as_of %d starts from %d, want the flush at %d", seq, got, seq/every*every)
		}
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
		s.svc.states.mu.Lock()
		st := s.svc.states.bySeq[stateKey{"acme", seq}]
		s.svc.states.mu.Unlock()
		if st == nil || st.base != seq/every*every {
			t.Errorf("the state at %d is not on the flush at %d: %+v", seq, seq/every*every, st)
		}
	}
}

// TestAsOfStateVersions: once the state versions have reached the shared base, as_of states
// read the states they update from them (one seek each, not a read through every table of the
// chain), and every answer, at random moments, at checkpoints and next to them, equals the
// pure evaluator's: a state's version at or below the base is the state the base holds, and
// one the overlay has written since is read from the overlay.
func TestAsOfStateVersions(t *testing.T) {
	const every = 7
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 1})
	newRandomHistory(s.d, 34).run(240)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	waitVersions(t, s)
	before := s.svc.statesFrom.versions.Load()
	last := s.d.seq
	moments := momentsAround(s.svc.ckpts.list(), last, rand.New(rand.NewPCG(5, 9)), 40)
	for _, seq := range moments {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	if got := s.svc.statesFrom.versions.Load() - before; got < uint64(len(moments))/2 {
		t.Errorf("%d of %d as_of states read their states from the versions", got, len(moments))
	}
}

// TestAsOfVersionsPastSharedBase: a checkpoint newer than the shared base (made since it was
// opened) is opened on its own, and the state versions are filled up to it in the background
// then, without waiting for the shared base's next opening: the next states on it read the
// versions, and answers stay exact.
func TestAsOfVersionsPastSharedBase(t *testing.T) {
	const every = 7
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 1})
	h := newRandomHistory(s.d, 35)
	h.run(120)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	h.run(120)
	s.sync(t)
	newest := s.d.seq / every * every
	waitCheckpoint(t, s, newest)
	if applied := s.svc.bases.versions.Applied(); applied >= newest {
		t.Fatalf("the versions reached %d before the checkpoint at %d was asked about", applied, newest)
	}
	last := s.d.seq
	requireOracleAt(t, s, Moment{Seq: last}, last)
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if got := s.svc.bases.versions.Applied(); got < newest {
			return fmt.Errorf("the state versions have reached %d, not the checkpoint %d", got, newest)
		}
		return nil
	})
	requireOracleAt(t, s, Moment{Seq: 5}, 5) // another state: the one at last is built again
	before := s.svc.statesFrom.versions.Load()
	for _, seq := range []uint64{last, newest, max(newest, last-1)} {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
		requireOracleAt(t, s, Moment{Seq: 5}, 5)
	}
	if got := s.svc.statesFrom.versions.Load() - before; got < 6 {
		t.Errorf("%d of 6 as_of states read their states from the versions", got)
	}
}

// momentsAround lists moments to ask about: the first two and last two, each checkpoint and
// the moments next to it, and n at random up to last.
func momentsAround(ckpts []uint64, last uint64, rnd *rand.Rand, n int) []uint64 {
	moments := []uint64{1, 2, last, last - 1}
	for _, c := range ckpts {
		moments = append(moments, c, min(c+1, last), c-1)
	}
	for range n {
		moments = append(moments, 1+rnd.Uint64N(last))
	}
	return moments
}

// TestEvictedBaseOpenedAgain: a base evicted from the open ones while a state still reads it
// is taken up again by the next asker, and one closing is waited for, rather than its
// checkpoint opened a second time: Pebble locks the directory even read-only, and the second
// opening failed ("lock held by current process"; the review of round 12, where the rebased
// chain's segment bases made it frequent).
func TestEvictedBaseOpenedAgain(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 5, OpenCheckpoints: 2})
	newRandomHistory(s.d, 93).run(80)
	s.sync(t)
	waitCheckpoint(t, s, 20)
	cs := s.svc.ckpts.list()
	held, err := s.svc.bases.acquire(cs[0]) // a state reads it
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs[1:3] { // two more evict it from the open ones
		b, err := s.svc.bases.acquire(c)
		if err != nil {
			t.Fatal(err)
		}
		s.svc.bases.release(b)
	}
	again, err := s.svc.bases.acquire(cs[0])
	if err != nil {
		t.Fatalf("the evicted base, still read, opened again: %v", err)
	}
	if again != held {
		t.Errorf("the evicted base was not taken up again")
	}
	s.svc.bases.release(again)
	s.svc.bases.release(held)
	// Evicted and closing (nobody reads it): the next asker waits for its close and opens it.
	for _, c := range cs[1:3] {
		b, err := s.svc.bases.acquire(c)
		if err != nil {
			t.Fatal(err)
		}
		s.svc.bases.release(b)
	}
	for range 3 {
		b, err := s.svc.bases.acquire(cs[0])
		if err != nil {
			t.Fatalf("the evicted base, closing, opened again: %v", err)
		}
		s.svc.bases.release(b)
		for _, c := range cs[1:3] {
			if b, err = s.svc.bases.acquire(c); err != nil {
				t.Fatal(err)
			}
			s.svc.bases.release(b)
		}
	}
}
