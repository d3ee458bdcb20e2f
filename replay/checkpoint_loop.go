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
// model's size.
var fillDB = projections.DBOptions{CacheBytes: 16 << 20, DisableWAL: true, DisableCompactions: true, Zstd: true,
	FS: noSyncFS{vfs.Default}}

// fill replays the stream from the checkpoint at from (0: empty) into a scratch copy and keeps a
// checkpoint at each sequence of want (ascending). The copy links the checkpoint's tables, so
// the checkpoints it keeps share them.
func (s *Service) fill(ctx context.Context, from uint64, want []uint64) error {
	dir, err := os.MkdirTemp(filepath.Join(s.opts.Dir, "scratch"), "fill-")
	if err != nil {
		return fmt.Errorf("replay: back-fill scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	// Thinning may have dropped the checkpoint at from meanwhile: start from the one before.
	if base, done := s.ckpts.nearest(from); base > 0 {
		err := copyDB(s.ckpts.path(base), dir)
		done()
		if err != nil {
			return err
		}
	} else {
		done()
	}
	db, err := projections.OpenDB(dir, fillDB)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = replayInto(ctx, s.store, db, allEvents, want[len(want)-1], s.opts.CheckpointEvery, func(applied uint64) error {
		if len(want) == 0 || applied != want[0] {
			return nil
		}
		want = want[1:]
		return s.ckpts.takeAt(db, applied)
	})
	return err
}

// CheckpointsCaughtUp reports whether the checkpoints reach as far as the grid's spacing below
// the live model's applied sequence (the filler may still fill older gaps).
func (s *Service) CheckpointsCaughtUp() bool {
	return s.proj == nil || s.ckpts.last()+s.ckpts.spacing() > s.proj.Applied()
}
