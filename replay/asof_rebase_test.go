package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acl-es/acl/events/eventstest"
)

// TestAsOfRebasedChain: with a small RebaseTables the chain's head is rebased several times
// (compacted into the model as of a checkpoint); the shared base on the newest checkpoint then
// reads at most RebaseTables flushes plus the rebase's few tables, however many checkpoints
// came before, and every answer, at random moments, at each checkpoint (rebases are at
// checkpoints) and next to it, equals the pure evaluator's: moments of the newest segment
// through the shared base, older ones through their segment's base (acquireSegment). The same
// holds after a restart (the head is copied from a rebased checkpoint, the state versions
// kept), and the chain goes on rebasing.
func TestAsOfRebasedChain(t *testing.T) {
	const every, k = 5, 4
	s, h, open := rebasingChain(t, 36, every, k, 0)
	s.svc = open()
	check := func(round int64, rebases uint64) {
		t.Helper()
		last := s.d.seq
		waitCheckpoint(t, s, last/every*every)
		if n := s.svc.rebases.Load(); n < rebases {
			t.Fatalf("%d rebases of a chain of %d checkpoints, want several", n, len(s.svc.ckpts.list()))
		}
		waitShared(t, s)
		waitVersions(t, s)
		s.svc.bases.mu.Lock()
		sh := s.svc.bases.shared
		tables, from := sh.flushes.Tables(), sh.flushes.From()
		s.svc.bases.mu.Unlock()
		// The rebase writes the model into one table here (it is small).
		if tables > k+2 || from == 0 {
			t.Fatalf("the shared base reads %d tables (rebased at %d) after %d checkpoints, want at most %d", tables, from, len(s.svc.ckpts.list()), k+2)
		}
		moments := momentsAround(s.svc.ckpts.list(), last, rand.New(rand.NewPCG(7, uint64(round))), 40)
		before := s.svc.bases.segmentUsed
		for _, seq := range moments {
			requireOracleAt(t, s, Moment{Seq: seq}, seq)
		}
		s.svc.bases.mu.Lock()
		segment := s.svc.bases.segmentUsed - before
		s.svc.bases.mu.Unlock()
		if segment < len(moments)/4 {
			t.Errorf("%d of %d answers read an older segment's base", segment, len(moments))
		}
		// The older segments' bases have added their states to the versions meanwhile: the
		// states of their moments are read from them now.
		var older []uint64
		for _, seq := range moments {
			if seq < from && seq > every {
				older = append(older, seq)
			}
		}
		eventstest.WaitFor(t, 30*time.Second, func() error {
			for _, seq := range older {
				if f := s.svc.bases.floor(seq); !s.svc.bases.versions.Covers(f) {
					return fmt.Errorf("the versions do not answer as of %d", f)
				}
			}
			return nil
		})
		vBefore := s.svc.statesFrom.versions.Load()
		for _, seq := range older {
			requireOracleAt(t, s, Moment{Seq: seq}, seq)
		}
		if got := s.svc.statesFrom.versions.Load() - vBefore; got < uint64(len(older))*3/4 {
			t.Errorf("%d of %d states of older segments read the versions", got, len(older))
		}
	}
	check(1, 3)
	rebases := s.svc.rebases.Load()
	if err := s.svc.Close(); err != nil {
		t.Fatal(err)
	}
	s.svc = open()
	defer s.svc.Close()
	h.run(150)
	s.sync(t)
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if s.svc.rebases.Load() == 0 {
			return fmt.Errorf("no rebase after the restart (%d before)", rebases)
		}
		return nil
	})
	check(2, 1)
}

// rebasingChain runs a random history of 300 commands (seed) on a stack whose own service
// keeps no checkpoint, and returns an opener of services on a replay directory of their own
// checkpointing every every events and rebasing past k tables (tail: checkpoints.tail, 0: the
// default).
func rebasingChain(t *testing.T, seed, every uint64, k int, tail uint64) (*stack, *randomHistory, func() *Service) {
	s := startStack(t, Options{CheckpointEvery: 1 << 40})
	h := newRandomHistory(s.d, seed)
	h.run(300)
	s.sync(t)
	dir := filepath.Join(t.TempDir(), "replay")
	return s, h, func() *Service {
		t.Helper()
		svc, err := New(s.env.Store, s.db, s.proj, Options{Dir: dir, CheckpointEvery: every, RebaseTables: k, CachedStates: 1, CheckpointBudget: -1})
		if err != nil {
			t.Fatal(err)
		}
		if tail > 0 {
			svc.ckpts.tail = tail
		}
		svc.Start(context.Background())
		return svc
	}
}

// TestRebasedChainThinning: a budget far too small thins a rebased chain as far as it can,
// yet each rebase's checkpoint and the last checkpoint before it stay (segmentEnds): every
// segment keeps the base its moments are read from, and answers at random moments and next to
// the checkpoints left equal the pure evaluator's.
func TestRebasedChainThinning(t *testing.T) {
	const every, k = 5, 4
	s := startStack(t, Options{CheckpointEvery: every, RebaseTables: k, CachedStates: 1})
	h := newRandomHistory(s.d, 37)
	h.run(300)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	// The budget shrinks once the chain has rebased (before, the spacing doubles as it
	// always did, and there would be no rebase); the next checkpoints thin it.
	s.svc.ckpts.mu.Lock()
	s.svc.ckpts.budget = func() int64 { return 1 }
	s.svc.ckpts.mu.Unlock()
	h.run(60)
	s.sync(t)
	last := s.d.seq
	eventstest.WaitFor(t, 20*time.Second, func() error {
		if got := s.svc.ckpts.last(); got+s.svc.ckpts.spacing() <= last {
			return fmt.Errorf("newest checkpoint %d, stream at %d", got, last)
		}
		return nil
	})
	s.svc.ckpts.mu.RLock()
	seqs, rebases, spacing := slices.Clone(s.svc.ckpts.seqs), slices.Clone(s.svc.ckpts.rebases), s.svc.ckpts.grid.every
	s.svc.ckpts.mu.RUnlock()
	if len(rebases) < 3 {
		t.Fatalf("%d rebases (%v) among checkpoints %v", len(rebases), rebases, seqs)
	}
	for _, r := range rebases {
		i, found := slices.BinarySearch(seqs, r)
		if !found || i == 0 || seqs[i-1] != r-every {
			t.Errorf("rebase %d: checkpoints kept %v, want it and the last before it", r, seqs)
		}
	}
	waitShared(t, s)
	for _, seq := range momentsAround(seqs, last, rand.New(rand.NewPCG(8, 8)), 30) {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	t.Logf("%d checkpoints kept of %d, spacing %d, rebases %v", len(seqs), last/every, spacing, rebases)
}

// TestOldMomentOpensItsSegmentOnly: a moment in an old segment of a chain rebased many times
// opens its own segment's base, not every newer segment's on the way back (the review of round
// 12: 13 answers over 16 segments opened or closed 157-171 bases, and the churn of the open
// bases made a still-read one open twice), and answers as the evaluator.
func TestOldMomentOpensItsSegmentOnly(t *testing.T) {
	const every = 3
	s := startStack(t, Options{CheckpointEvery: every, RebaseTables: 2})
	newRandomHistory(s.d, 39).run(400)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	if n := s.svc.rebases.Load(); n < 6 {
		t.Fatalf("%d rebases, want several segments", n)
	}
	for seq := uint64(2); seq < 40; seq += 3 {
		s.svc.bases.mu.Lock()
		before := s.svc.bases.opened
		s.svc.bases.mu.Unlock()
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
		s.svc.bases.mu.Lock()
		opened := s.svc.bases.opened - before
		s.svc.bases.mu.Unlock()
		if opened > 1 {
			t.Errorf("as_of %d opened %d bases, want its segment's at most", seq, opened)
		}
	}
}

// TestThinnedChainReadsFlushes: past the newest few, thinning drops the checkpoints whose
// moments the last checkpoint of their segment answers as of its flushes (each kept one cost
// its manifest, the list of every table it links: 42.5 MB for 346 checkpoints at 10^6
// records): a rebased chain keeps its segment ends and its newest tail only, and every answer,
// at random moments and at and next to each multiple, equals the pure evaluator's, right
// after a restart (no shared base yet: the first answer reads its segment's last checkpoint as
// of its flushes, not an older checkpoint replaying the events since) and once the shared
// base is open.
func TestThinnedChainReadsFlushes(t *testing.T) {
	const every, k, tail = 5, 4, 3
	s, _, open := rebasingChain(t, 41, every, k, tail)
	s.svc = open()
	dir := s.svc.opts.Dir
	last := s.d.seq
	waitCheckpoint(t, s, last/every*every)
	kept := func() []uint64 {
		t.Helper()
		var seqs []uint64
		eventstest.WaitFor(t, 10*time.Second, func() error {
			s.svc.ckpts.mu.RLock()
			defer s.svc.ckpts.mu.RUnlock()
			seqs = slices.Clone(s.svc.ckpts.seqs)
			ends := s.svc.ckpts.segmentEnds()
			newest, rebases := seqs[len(seqs)-1], s.svc.ckpts.rebases
			if len(rebases) < 3 {
				return fmt.Errorf("%d rebases, want several segments", len(rebases))
			}
			for _, c := range seqs {
				// Past the ends, only the newest segment's tail stays.
				if !ends[c] && (newest-c >= tail*every || c < rebases[len(rebases)-1]) {
					return fmt.Errorf("checkpoint %d kept (newest %d, rebases %v): not a segment's end", c, newest, rebases)
				}
			}
			return nil
		})
		return seqs
	}
	seqs := kept()
	if err := s.svc.Close(); err != nil {
		t.Fatal(err)
	}
	// On disk too: a dropped checkpoint's directory is gone (renamed, then removed).
	ents, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return e.Name() == chainedMark || e.Name() == gridFile })
	if len(ents) != len(seqs) {
		t.Errorf("%d entries besides CHAINED and GRID in checkpoints/, want the %d kept", len(ents), len(seqs))
	}
	s.svc = open()
	defer s.svc.Close()
	var multiples []uint64
	for m := uint64(every); m <= last; m += every {
		multiples = append(multiples, m)
	}
	moments := momentsAround(multiples, last, rand.New(rand.NewPCG(9, 9)), 30)
	requireOracleAt(t, s, Moment{Seq: moments[4]}, moments[4]) // cold: no shared base yet
	s.svc.bases.mu.Lock()
	cold := s.svc.bases.segmentUsed
	s.svc.bases.mu.Unlock()
	if cold != 1 {
		t.Errorf("the first answer after a restart read %d segment bases, want its segment's", cold)
	}
	for _, seq := range moments {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	waitShared(t, s)
	for _, seq := range moments {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	// No event since the restart: the filler made no checkpoint (before the first segment was
	// known to be read as of its flushes, the back-fill made the ones thinning had dropped).
	s.svc.ckpts.mu.RLock()
	added, now := s.svc.ckpts.added, slices.Clone(s.svc.ckpts.seqs)
	s.svc.ckpts.mu.RUnlock()
	if added != 0 || !slices.Equal(now, seqs) {
		t.Errorf("after the restart %d checkpoints made, %v kept; want none made, %v", added, now, seqs)
	}
	t.Logf("%d checkpoints kept of %d multiples: %v", len(seqs), len(multiples), seqs)
}

// TestStaleSharedBaseKeepsCheckpoints: after an idle spell with no as_of answer, the shared base
// still stands on an old checkpoint; the checkpoints written since must stay, so that a moment
// between the two starts from one of them, not from the shared base with every event since
// replayed (thinning kept only the newest tail: a moment replayed up to 99 events at a spacing
// of 5; at the defaults up to a whole segment). Found by round 18's review.
func TestStaleSharedBaseKeepsCheckpoints(t *testing.T) {
	const every, k, tail = 5, 1000, 3
	s, h, open := rebasingChain(t, 41, every, k, tail)
	s.svc = open()
	defer s.svc.Close()
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitShared(t, s)
	s.svc.bases.mu.Lock()
	n1 := s.svc.bases.shared.seq
	s.svc.bases.mu.Unlock()
	h.run(300) // no as_of answer meanwhile
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	newest, worst := s.svc.ckpts.last(), uint64(0)
	for seq := n1 + 1; seq+tail*every < newest; seq++ {
		if f := s.svc.bases.floor(seq); seq-f > worst {
			worst = seq - f
		}
	}
	mid := n1 + (newest-tail*every-n1)/2
	requireOracleAt(t, s, Moment{Seq: mid}, mid) // the answer itself is right either way
	if worst > 2*every {
		t.Errorf("a moment between the shared base (%d) and the newest checkpoint (%d) replays %d events (spacing %d)", n1, newest, worst, every)
	}
}
