package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/acl-es/acl/projections"
)

// checkpointLoop keeps the as_of checkpoints following the live read model: each time the
// projector passes the next multiple of the grid's spacing, it wakes the filler, which replays
// the stream from the newest checkpoint into a copy of it and keeps a checkpoint at each
// multiple it reaches (fill). The checkpoints are not taken from the live model: its
// compactions rewrite its tables, so each of its checkpoints pinned a copy of most of the model
// once the model moved on (1.3 GB for a 128 MB model after a bulk load), where the filler's
// copies never compact and each checkpoint adds only the table its flush wrote. So every
// multiple the grid wants below the live model's applied sequence gets a checkpoint, and an
// as_of replays fewer than CheckpointEvery events (more while the filler catches up).
func (s *Service) checkpointLoop(ctx context.Context) {
	if s.proj == nil {
		return
	}
	wake := make(chan struct{}, 1)
	// One fill at start: what the stream holds beyond the newest checkpoint, and the gaps a
	// fill interrupted by a stop left below it.
	wake <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fillLoop(ctx, wake)
	}()
	for {
		every := s.ckpts.spacing()
		next := max(s.ckpts.last(), s.proj.Applied())/every*every + every
		if err := s.proj.WaitFor(ctx, next); err != nil {
			return
		}
		select {
		case wake <- struct{}{}:
		default: // a fill is pending: it will go this far too
		}
	}
}

// fillLoop fills gaps each time it is woken, until ctx ends.
func (s *Service) fillLoop(ctx context.Context, wake <-chan struct{}) {
	defer func() { s.head.close(); s.head = nil }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		if err := s.backfill(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("replay: checkpoint back-fill failed", "err", err)
		}
	}
}

// backfill makes the checkpoints the grid wants and lacks, stretch by stretch, up to the live
// model's applied sequence (the stream surely holds every event up to it).
func (s *Service) backfill(ctx context.Context) error {
	applied := s.proj.Applied()
	seqs := append(s.ckpts.list(), applied+1) // the stretch after the newest checkpoint too
	newest := applied
	prev := uint64(0)
	for _, seq := range seqs {
		if want := s.ckpts.missing(prev, seq, newest); len(want) > 0 {
			start := time.Now()
			if err := s.fill(ctx, prev, want); err != nil {
				return err
			}
			s.log.Info("replay: back-filled checkpoints", "from", prev, "to", seq, "made", len(want), "took", time.Since(start))
		}
		prev = seq
	}
	return nil
}

// fillDB opens the filler's scratch copy: no WAL or fsync, and no compactions, so that each
// checkpoint it keeps holds the previous one's tables (hard links) plus the one its flush
// wrote: hundreds of checkpoints cost about the data written once. Tables are compressed with
// zstd: they stay on disk for as long as their checkpoints, within the budget of the live
// model's size. It stays open between fills (chainHead): a flush every CheckpointEvery events
// needs no more than the smallest memtable. Its cache is not small: every state the filler
// reads looks in each of the chain's tables (one per checkpoint, ~120 at 2*10^5 records), and
// with 8 MiB their filter and index blocks were read from disk again and again: the filler
// took 40 % of acld's CPU under 980 commands/s. With 64 MiB it took 9 % and acld answered 1,408
// commands/s (aclbench compare shape, load 1.3-2.1).
var fillDB = projections.DBOptions{CacheBytes: 64 << 20, MemTableBytes: 4 << 20, DisableWAL: true, DisableCompactions: true,
	Zstd: true, FS: noSyncFS{vfs.Default}}

// chainHead is the filler's copy of the newest checkpoint it made, kept open between fills:
// the next fill continues from it instead of copying that checkpoint and opening its hundreds of
// tables again. Only the fill loop's goroutine uses it.
type chainHead struct {
	dir string
	db  *projections.DB
	seq uint64 // the sequence db has applied: the checkpoint it continues from
}

func (h *chainHead) close() {
	if h != nil {
		h.db.Close()
		os.RemoveAll(h.dir)
	}
}

// fill replays the stream from the checkpoint at from (0: empty) into a scratch copy and keeps a
// checkpoint at each sequence of want (ascending). The copy links the checkpoint's tables, so
// the checkpoints it keeps share them. The copy stays open as the chain's head when it ends at
// the newest checkpoint, and a fill from there continues it.
func (s *Service) fill(ctx context.Context, from uint64, want []uint64) (err error) {
	h := s.head
	s.head = nil
	if h == nil || h.seq != from {
		h.close()
		if h, err = s.copyForFill(from); err != nil {
			return err
		}
	}
	defer func() {
		if err == nil && h.seq == s.ckpts.last() {
			s.head = h
			return
		}
		h.close()
	}()
	h.seq, err = replayInto(ctx, s.store, h.db, allEvents, want[len(want)-1], s.opts.CheckpointEvery, func(applied uint64) error {
		if len(want) == 0 || applied != want[0] {
			return nil
		}
		want = want[1:]
		return s.ckpts.takeAt(h.db, applied)
	})
	return err
}

// copyForFill opens a scratch copy of the newest checkpoint at or below from (thinning may have
// dropped the one at from meanwhile; none: an empty model).
func (s *Service) copyForFill(from uint64) (*chainHead, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.opts.Dir, "scratch"), "chain-")
	if err != nil {
		return nil, fmt.Errorf("replay: back-fill scratch: %w", err)
	}
	base, done := s.ckpts.nearest(from)
	if base > 0 {
		err = copyDB(s.ckpts.path(base), dir)
	}
	done()
	var db *projections.DB
	if err == nil {
		db, err = projections.OpenDB(dir, fillDB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &chainHead{dir: dir, db: db, seq: base}, nil
}

// CheckpointsCaughtUp reports whether the checkpoints reach as far as the grid's spacing below
// the live model's applied sequence (the filler may still fill older gaps).
func (s *Service) CheckpointsCaughtUp() bool {
	return s.proj == nil || s.ckpts.last()+s.ckpts.spacing() > s.proj.Applied()
}
