package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
	every := s.opts.CheckpointEvery
	next := s.ckpts.last() + every
	wake := make(chan struct{}, 1)
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
		next = seq + every
		if missesMultiple(prev, seq, every) {
			select {
			case wake <- struct{}{}:
			default: // a fill is pending: it will see this gap too
			}
		}
	}
}

// missesMultiple reports whether a multiple of every lies strictly between two consecutive
// checkpoints: the filler keeps one at each, so that an as_of replays fewer than every events.
func missesMultiple(prev, next, every uint64) bool { return (next-1)/every > prev/every }

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

// backfill fills every stretch between checkpoints that misses a multiple of CheckpointEvery.
func (s *Service) backfill(ctx context.Context) error {
	every := s.opts.CheckpointEvery
	prev := uint64(0)
	for _, seq := range s.ckpts.list() {
		if missesMultiple(prev, seq, every) {
			start := time.Now()
			if err := s.fill(ctx, prev, seq); err != nil {
				return err
			}
			s.log.Info("replay: back-filled checkpoints", "from", prev, "to", seq, "took", time.Since(start))
		}
		prev = seq
	}
	return nil
}

// fill replays (from, to) into a scratch copy of the checkpoint at from and keeps a checkpoint
// at each multiple of CheckpointEvery.
func (s *Service) fill(ctx context.Context, from, to uint64) error {
	dir, err := os.MkdirTemp(filepath.Join(s.opts.Dir, "scratch"), "fill-")
	if err != nil {
		return fmt.Errorf("replay: back-fill scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	if from > 0 {
		_, done := s.ckpts.nearest(from)
		err := copyDB(s.ckpts.path(from), dir)
		done()
		if err != nil {
			return err
		}
	}
	db, err := projections.OpenDB(dir, scratchDB)
	if err != nil {
		return err
	}
	defer db.Close()
	every := s.opts.CheckpointEvery
	_, err = replayInto(ctx, s.store, db, allEvents, to-1, every, func(applied uint64) error {
		if applied%every != 0 {
			return nil
		}
		return s.ckpts.takeAt(db, applied)
	})
	return err
}
