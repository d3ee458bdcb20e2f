package replay

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/projections"
)

// liveSnapshots checkpoints the live model into dir each time its projector commits a batch
// ending at a multiple of every, before anything else writes to it: the live model exactly as
// of that sequence, to compare the chain's checkpoints with.
func liveSnapshots(tb testing.TB, every uint64, dir string) func(*eventstest.Env, *projections.DB, *projections.Projector) func() {
	return func(_ *eventstest.Env, db *projections.DB, p *projections.Projector) func() {
		return p.AddMirror(every, func(_ []byte, _, last uint64) {
			if last%every != 0 {
				return
			}
			if err := db.Checkpoint(filepath.Join(dir, ckptName(last))); err != nil {
				tb.Errorf("live checkpoint at %d: %v", last, err)
			}
		})
	}
}

// requireChainIsLive compares each of svc's checkpoints with the live model as of its sequence,
// key by key and value by value.
func requireChainIsLive(t *testing.T, svc *Service, live string) {
	t.Helper()
	seqs := svc.ckpts.list()
	if len(seqs) == 0 {
		t.Fatal("no checkpoint")
	}
	tmp := t.TempDir()
	for _, seq := range seqs {
		cp := filepath.Join(tmp, ckptName(seq)) // the checkpoint may be open as an as_of base
		if err := copyDB(svc.ckpts.path(seq), cp); err != nil {
			t.Fatal(err)
		}
		r, err := Verify(cp, filepath.Join(live, ckptName(seq)))
		if err != nil {
			t.Fatalf("checkpoint %d: %v", seq, err)
		}
		if !r.OK() {
			t.Fatalf("checkpoint %d differs from the live model as of %d in %d of %d keys, first: %+v", seq, seq, r.Differences, r.Keys, r.Listed[0])
		}
	}
}

// TestChainFollowsProjector: once the chain's head has caught up, the filler keeps it with the
// live projector's committed batches, replaying nothing from the stream, and each checkpoint it
// takes holds exactly the live model as of its sequence (not a batch more or less).
func TestChainFollowsProjector(t *testing.T) {
	const every = 10
	live := t.TempDir()
	s := startStackWith(t, Options{CheckpointEvery: every}, liveSnapshots(t, every, live))
	h := newRandomHistory(s.d, 11)
	for range 6 {
		h.run(40)
		s.sync(t)
	}
	waitChain(t, s.svc, s.d, s.d.seq/every*every)
	if got := s.svc.mirror.replayed.Load(); got != 0 {
		t.Errorf("the filler replayed %d events from the stream; want none, all from the projector's batches", got)
	}
	if got := s.svc.mirror.applied.Load(); got < s.d.seq/every*every {
		t.Errorf("the filler applied %d events from the projector's batches, want at least %d", got, s.d.seq/every*every)
	}
	requireChainIsLive(t, s.svc, live)
}

// TestChainCatchesUp: a chain started behind the live model (a model that applied events
// before the service ran, batches dropped while the queue was full) replays the stream to catch
// up, then follows the projector; stopped and started again at random points of the fill, it
// keeps only checkpoints that equal the live model as of their sequence.
func TestChainCatchesUp(t *testing.T) {
	const every = 10
	s, h, live, newChain := behindChain(t, every, 12)
	for round := range 6 {
		svc := newChain()
		if round%2 == 1 {
			svc.mirror.max = 1 // every batch dropped: the filler replays them all
		}
		svc.Start(context.Background())
		h.run(30)
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		if err := svc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s.sync(t)
	svc := newChain()
	svc.Start(context.Background())
	defer svc.Close()
	waitChain(t, svc, s.d, s.d.seq/every*every)
	h.run(60)
	s.sync(t)
	waitChain(t, svc, s.d, s.d.seq/every*every)
	if svc.mirror.applied.Load() == 0 {
		t.Error("the caught-up chain applied no batch of the projector's")
	}
	requireChainIsLive(t, svc, live)
}

// TestMirrorSplitsBatches: a projector with a mirror ends a batch at each multiple of its
// spacing, however many messages it is handed at once; the batches it hands over continue one
// another, and a DB that applies them holds what the projector's DB holds, key by key.
func TestMirrorSplitsBatches(t *testing.T) {
	const every = 7
	s := startStack(t, Options{CheckpointEvery: 1 << 40})
	newRandomHistory(s.d, 13).run(100)
	s.sync(t)
	dir := t.TempDir()
	open := func(name string) *projections.DB {
		db, err := projections.OpenDB(filepath.Join(dir, name), scratchDB)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	src, dst := open("source"), open("mirror")
	p, err := projections.NewCopyProjector(src)
	if err != nil {
		t.Fatal(err)
	}
	var spans [][2]uint64
	p.AddMirror(every, func(repr []byte, prev, last uint64) {
		spans = append(spans, [2]uint64{prev, last})
		if err := dst.ApplyBatch(slices.Clone(repr)); err != nil {
			t.Errorf("apply batch %d..%d: %v", prev, last, err)
		}
	})
	// One run of 4096 messages at most, which the mirror's spacing splits.
	if _, err := replayOnto(context.Background(), s.env.Store, p, allEvents, s.d.seq, 0, nil); err != nil {
		t.Fatal(err)
	}
	prev := uint64(0)
	for _, sp := range spans {
		if sp[0] != prev {
			t.Fatalf("batches %v: %d does not continue from %d", spans, sp[0], prev)
		}
		if first := (sp[0]/every + 1) * every; first < sp[1] {
			t.Fatalf("batches %v: %d..%d holds the multiple %d before its end", spans, sp[0], sp[1], first)
		}
		prev = sp[1]
	}
	if prev != s.d.seq || len(spans) < int(s.d.seq/every) {
		t.Fatalf("batches %v end at %d in %d, want %d in at least %d", spans, prev, len(spans), s.d.seq, s.d.seq/every)
	}
	for _, db := range []*projections.DB{src, dst} {
		if err := db.Flush(); err != nil { // no WAL
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Verify(filepath.Join(dir, "source"), filepath.Join(dir, "mirror"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Keys < 50 {
		t.Fatalf("the mirror differs from its source in %d of %d keys: %+v", r.Differences, r.Keys, r.Listed)
	}
}

// TestChainHeadMigrated: after a restart on checkpoints written before the role holder entries
// carried their value (blanked here), the chain's head copied from the newest one is migrated
// as the live model is, and every checkpoint made from it equals the live model as of its
// sequence, key by key (without the migration, the holders it did not touch keep no value).
func TestChainHeadMigrated(t *testing.T) {
	const every = 10
	s, h, live, newChain := behindChain(t, every, 14)
	open := func() *Service {
		svc := newChain()
		svc.Start(context.Background())
		return svc
	}
	svc := open()
	waitChain(t, svc, s.d, s.d.seq/every*every)
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	old := svc.ckpts.list()
	blanked := 0
	for _, seq := range old {
		blanked += blankRoleHolders(t, svc.ckpts.path(seq))
	}
	if blanked == 0 {
		t.Fatal("no role holder entry in the checkpoints: the history is too small")
	}
	svc = open()
	defer svc.Close()
	h.run(60)
	s.sync(t)
	waitChain(t, svc, s.d, s.d.seq/every*every)
	tmp, compared := t.TempDir(), 0
	for _, seq := range svc.ckpts.list() {
		if seq <= slices.Max(old) {
			continue
		}
		cp := filepath.Join(tmp, ckptName(seq))
		if err := copyDB(svc.ckpts.path(seq), cp); err != nil {
			t.Fatal(err)
		}
		r, err := Verify(cp, filepath.Join(live, ckptName(seq)))
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("checkpoint %d differs from the live model in %d of %d keys, first: %+v", seq, r.Differences, r.Keys, r.Listed[0])
		}
		compared++
	}
	if compared == 0 {
		t.Fatal("no checkpoint made after the restart")
	}
}

// blankRoleHolders rewrites the role holder entries (<t> r <role> <principal>) of the model in
// dir without their value, as a model written before they had one; it answers how many.
func blankRoleHolders(t *testing.T, dir string) int {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		parts := bytes.Split(it.Key(), []byte{0})
		if len(parts) == 5 && string(parts[1]) == "r" {
			if err := b.Set(it.Key(), nil, nil); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete([]byte("!holders"), nil); err != nil { // nor did an older release write this
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return n
}

// behindChain is a stack whose live model applied 150 random messages (seed) before any chain
// ran, keeping a checkpoint of its own every every messages in live to compare with, and
// newChain, which makes a chain service (not started) on one directory of the test's.
func behindChain(t *testing.T, every, seed uint64) (s *stack, h *randomHistory, live string, newChain func() *Service) {
	live = t.TempDir()
	s = startStackWith(t, Options{CheckpointEvery: 1 << 40}, liveSnapshots(t, every, live))
	h = newRandomHistory(s.d, seed)
	h.run(150)
	s.sync(t)
	dir := t.TempDir()
	newChain = func() *Service {
		svc, err := New(s.env.Store, s.db, s.proj, Options{Dir: dir, CheckpointEvery: every, CheckpointBudget: -1})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	return s, h, live, newChain
}
