package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
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
	s := startStack(t, Options{CheckpointEvery: 1 << 40})
	h := newRandomHistory(s.d, 36)
	h.run(300)
	s.sync(t)
	dir := filepath.Join(t.TempDir(), "replay")
	open := func() *Service {
		t.Helper()
		svc, err := New(s.env.Store, s.db, s.proj, Options{Dir: dir, CheckpointEvery: every, RebaseTables: k, CachedStates: 1, CheckpointBudget: -1})
		if err != nil {
			t.Fatal(err)
		}
		svc.Start(context.Background())
		return svc
	}
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
		moments := []uint64{1, 2, last, last - 1}
		for _, c := range s.svc.ckpts.list() {
			moments = append(moments, c, min(c+1, last), c-1)
		}
		rnd := rand.New(rand.NewPCG(7, uint64(round)))
		for range 40 {
			moments = append(moments, 1+rnd.Uint64N(last))
		}
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
	eventstest.WaitFor(t, 10*time.Second, func() error {
		if s.svc.rebases.Load() == 0 {
			return fmt.Errorf("no rebase after the restart (%d before)", rebases)
		}
		return nil
	})
	check(2, 1)
}
