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

// checkpointLoop keeps a checkpoint of the live read model every CheckpointEvery applied events.
// The first one is taken at once when the model is ahead of the newest checkpoint. The live
// model applies the stream in batches, so its checkpoints can be further apart than asked
// (while catching up, or on a replay directory new to an old model): a filler goroutine then
// replays those stretches into a scratch copy and keeps checkpoints at the multiples of
// CheckpointEvery inside them. So every multiple below the newest checkpoint has one, and an
// as_of replays fewer than CheckpointEvery events (the newest checkpoint aside, which the live
// loop renews every CheckpointEvery events).
func (s *Service) checkpointLoop(ctx context.Context) {
	if s.proj == nil || s.db == nil {
		return
	}
	next := s.ckpts.last() + s.ckpts.spacing()
	wake := make(chan struct{}, 1)
	// One fill at start: a fill interrupted by a stop leaves gaps below checkpoints that later
	// wakes (each about the newest stretch) would not notice.
	wake <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fillLoop(ctx, wake)
	}()
	pause := 100 * time.Millisecond
	for {
		if err := s.proj.WaitFor(ctx, next); err != nil {
			return
		}
		prev := s.ckpts.last()
		seq, err := s.ckpts.take(s.db)
		if err != nil {
			s.log.Error("replay: checkpoint of the read model failed", "applied", s.proj.Applied(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Minute)
			continue
		}
		pause = 100 * time.Millisecond
		s.log.Debug("replay: checkpoint", "seq", seq)
		next = seq + s.ckpts.spacing()
		if len(s.ckpts.missing(prev, seq, seq)) > 0 {
			select {
			case wake <- struct{}{}:
			default: // a fill is pending: it will see this gap too
			}
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

// backfill makes the checkpoints the grid wants and lacks, stretch by stretch.
func (s *Service) backfill(ctx context.Context) error {
	seqs := s.ckpts.list()
	if len(seqs) == 0 {
		return nil
	}
	newest := seqs[len(seqs)-1]
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

// fillDB opens the filler's scratch copy: no WAL or fsync, but compactions, since it may take
// many checkpoints (each a flush) of a long stretch, which as_of copies then read.
var fillDB = projections.DBOptions{CacheBytes: 16 << 20, DisableWAL: true, FS: noSyncFS{vfs.Default}}

// fill replays the stream from the checkpoint at from (0: empty) into a scratch copy and keeps a
// checkpoint at each sequence of want (ascending).
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
