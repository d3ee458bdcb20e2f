package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acl-es/acl/events/eventstest"
)

// TestAsOfVersionsOfAnotherGrid: the state versions were filled from a chain flushed every 16
// messages; after a restart on a grid of 8 the back-filled checkpoints flush in between. A
// state written before such a flush and again before the next flush of the first chain has only
// its later version stored, so an answer there must not read the versions: every moment at
// and next to each checkpoint of both grids equals the pure evaluator's (round 10's review
// reproduced "no principal" and stale levels here).
func TestAsOfVersionsOfAnotherGrid(t *testing.T) {
	// rebuilt: the checkpoints are thrown away (the state versions kept) and made again on the
	// grid of 8, and the answers come through the shared base on them.
	for _, rebuilt := range []bool{false, true} {
		t.Run(fmt.Sprint("rebuilt=", rebuilt), func(t *testing.T) { testAsOfVersionsOfAnotherGrid(t, rebuilt) })
	}
}

func testAsOfVersionsOfAnotherGrid(t *testing.T, rebuilt bool) {
	s := startStack(t, Options{CheckpointEvery: 1 << 40})
	newRandomHistory(s.d, 34).run(240)
	s.sync(t)
	last := s.d.seq
	dir := filepath.Join(t.TempDir(), "replay")
	open := func(every uint64) *Service {
		t.Helper()
		svc, err := New(s.env.Store, s.db, s.proj, Options{Dir: dir, CheckpointEvery: every, CachedStates: 1, CheckpointBudget: -1})
		if err != nil {
			t.Fatal(err)
		}
		svc.Start(context.Background())
		return svc
	}
	s.svc = open(16)
	waitCheckpoint(t, s, last/16*16)
	waitShared(t, s)
	waitVersions(t, s)
	if err := s.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if rebuilt {
		if err := os.RemoveAll(filepath.Join(dir, "checkpoints")); err != nil {
			t.Fatal(err)
		}
	}
	s.svc = open(8)
	defer s.svc.Close()
	eventstest.WaitFor(t, 20*time.Second, func() error {
		if got := len(s.svc.ckpts.list()); uint64(got) < last/8 {
			return fmt.Errorf("%d checkpoints on the grid of 8, want %d", got, last/8)
		}
		return nil
	})
	if rebuilt {
		waitShared(t, s)
	}
	for seq := uint64(8); seq <= last; seq += 8 {
		for _, m := range []uint64{seq, min(seq+1, last), seq - 1} {
			requireOracleAt(t, s, Moment{Seq: m}, m)
		}
	}
}
