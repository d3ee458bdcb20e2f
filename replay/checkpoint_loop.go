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

// checkpointLoop keeps the as_of checkpoints following the live read model. The checkpoints
// are not taken from the live model: its compactions rewrite its tables, so each of its
// checkpoints pinned a copy of most of the model once the model moved on (1.3 GB for a 128 MB
// model after a bulk load). They are a chain: the filler keeps a copy of the newest one open
// without compactions (the head), brings it forward and checkpoints it at each multiple of the
// grid's spacing, so each checkpoint links the tables of the one before plus the one its flush
// wrote. Once the head has caught up with the live model it follows the projector's committed
// batches (chain_mirror.go): each is applied to the head as written, with no read, and a
// checkpoint is taken between two batches (the projector ends one at each multiple). It
// replays the stream only to catch up: at start, after the batches queued for it overflowed,
// and for the gaps an interrupted fill left below the newest checkpoint. So every multiple the
// grid wants below the live model's applied sequence gets a checkpoint, and an as_of replays
// fewer than CheckpointEvery events (more while the filler catches up).
func (s *Service) checkpointLoop(ctx context.Context) {
	if s.proj == nil {
		return
	}
	s.mirror.wakeGaps() // at start: the gaps below the newest checkpoint, the head up to the model
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Before the first back-fill: until the first segment is known to be read as of its
		// flushes, the gaps thinning left in it look like checkpoints to make (at 10^6
		// records a start back-filled the grid's ~340 by replays, 3 minutes at load 17, which
		// thinning then dropped).
		s.checkFirstSegment()
		s.fillLoop(ctx)
	}()
	for {
		every := s.ckpts.spacing()
		next := max(s.ckpts.last(), s.proj.Applied())/every*every + every
		if err := s.proj.WaitFor(ctx, next); err != nil {
			return
		}
		s.mirror.wakeGaps()
	}
}

// fillLoop fills gaps and brings the head forward each time it is woken, until ctx ends.
func (s *Service) fillLoop(ctx context.Context) {
	defer func() { s.head.close(); s.head = nil }()
	for {
		var gaps bool
		select {
		case <-ctx.Done():
			return
		case <-s.mirror.gaps:
			gaps = true
		case <-s.mirror.queued:
		}
		if gaps {
			// The stretches below the newest checkpoint: those a fill interrupted by a stop left
			// (the first wake, at start), or one that failed.
			if err := s.backfill(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("replay: checkpoint back-fill failed", "err", err)
			}
		}
		if err := s.advanceHead(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("replay: checkpoint chain failed", "err", err)
			s.head.close() // reopened from the newest checkpoint on the next wake
			s.head = nil
		}
	}
}

// checkFirstSegment finds, once at start, whether the chain's first segment is read as of its
// flushes (every table of its last checkpoint tagged), so that thinning may drop the
// checkpoints its flushes serve (checkpoints.servedByFlushes). A chain made by a release
// before the tags is not: its checkpoints stay until its segment is left behind by a rebase
// (or the chain is rebuilt). With no checkpoint yet, the filler makes the chain, tagged. At
// 10^6 records the check opens the segment's 1,411 tables (a second or two, before the filler
// starts); the base stays open for the answers of that segment (acquireSegment).
func (s *Service) checkFirstSegment() {
	end := s.ckpts.firstSegmentEnd()
	if end > 0 {
		b, err := s.bases.acquire(end)
		if err != nil {
			s.log.Warn("replay: checkpoints: open the first segment's last checkpoint", "checkpoint", end, "err", err)
			return
		}
		f, tagged, err := b.tables()
		s.bases.release(b)
		if err != nil || !tagged || f.From() > 0 {
			if err != nil {
				s.log.Warn("replay: checkpoints: list the first segment's tables", "checkpoint", end, "err", err)
			}
			return
		}
	}
	if err := s.ckpts.setFirstTagged(); err != nil {
		s.log.Error("replay: checkpoints: thin", "err", err)
	}
}

// backfill makes the checkpoints the grid wants and lacks below the newest checkpoint, stretch
// by stretch, each from a copy of the checkpoint before it.
func (s *Service) backfill(ctx context.Context) error {
	newest := max(s.proj.Applied(), s.ckpts.last())
	prev := uint64(0)
	for _, seq := range s.ckpts.list() {
		if want := s.ckpts.gaps(prev, seq, newest); len(want) > 0 {
			start := time.Now()
			if err := s.fillGap(ctx, prev, want); err != nil {
				return err
			}
			s.log.Info("replay: back-filled checkpoints", "from", prev, "to", seq, "made", len(want), "took", time.Since(start))
		}
		prev = seq
	}
	return nil
}

// fillGap replays the stream from the checkpoint at from (0: empty) into a scratch copy of it
// and keeps a checkpoint at each sequence of want (ascending).
func (s *Service) fillGap(ctx context.Context, from uint64, want []uint64) error {
	h, err := s.copyForFill(from)
	if err != nil {
		return err
	}
	defer h.close()
	return s.replayHead(ctx, h, want[len(want)-1])
}

// advanceHead brings the chain's head up to the live model: it applies the batches the
// projector committed, in order, replaying the stream where they do not continue the head
// (batches dropped while the queue was full, or committed before the head caught up), and
// checkpoints the head at each sequence the grid wants.
func (s *Service) advanceHead(ctx context.Context) error {
	applied := s.proj.Applied() // every batch up to it has been handed to the mirror
	if s.head == nil {
		h, err := s.copyForFill(s.ckpts.last())
		if err != nil {
			return err
		}
		s.head = h
	}
	h := s.head
	for _, b := range s.mirror.take() {
		if b.last <= h.seq {
			continue // the head has it already, replayed from the stream
		}
		if b.prev > h.seq {
			if err := s.replayHead(ctx, h, b.prev); err != nil {
				return err
			}
		}
		if b.prev != h.seq {
			continue // it overlaps what was replayed: the stream gives the rest
		}
		want := s.ckpts.missing(b.prev, b.last+1, b.last)
		if len(want) > 0 && (len(want) > 1 || want[0] != b.last) {
			continue // a checkpoint inside the batch (not split there): the stream gives it
		}
		if err := h.db.ApplyBatch(b.repr); err != nil {
			return err
		}
		h.seq = b.last
		s.mirror.applied.Add(b.last - b.prev)
		if len(want) > 0 {
			if err := s.checkpoint(ctx, h.db, b.last); err != nil {
				return err
			}
		}
	}
	if h.seq < applied {
		return s.replayHead(ctx, h, applied)
	}
	return nil
}

// replayHead replays the stream into h up to to, keeping a checkpoint at each sequence the grid
// wants on the way.
func (s *Service) replayHead(ctx context.Context, h *chainHead, to uint64) error {
	want := s.ckpts.missing(h.seq, to+1, max(to, s.ckpts.last()))
	from := h.seq
	var err error
	h.seq, err = replayInto(ctx, s.store, h.db, allEvents, to, s.opts.CheckpointEvery, func(applied uint64) error {
		for len(want) > 0 && want[0] < applied {
			want = want[1:] // not at a batch's end: cannot be (replay ends one at each multiple)
		}
		if len(want) == 0 || applied != want[0] {
			return nil
		}
		want = want[1:]
		return s.checkpoint(ctx, h.db, applied)
	})
	s.mirror.replayed.Add(h.seq - from)
	return err
}

// checkpoint keeps db (the chain's head, or a gap's copy) as the checkpoint of seq, rebasing it
// first when it holds more than RebaseTables level-0 tables: each flush is one level-0 table,
// never compacted, so without rebases the newest checkpoint linked one table per
// CheckpointEvery events of the whole history (1,411 at 10^6 records), and the bases opened on
// it paid for each (Pebble's level-0 sublevels, ~21-49 MB of heap, its file cache, fds, a
// visible query merging every table). The rebase compacts db into a few tables holding the
// model as of seq (projections.DB.Rebase); this checkpoint and the next ones link those plus
// the flushes after them. The checkpoints before keep their own tables (hard links), and the
// shared base, once on a rebased checkpoint, reads as of its rebase onwards only
// (projections.Flushes.From): earlier moments start from their own checkpoints, whose tables
// are as bounded. A crash during the rebase leaves only the head, a scratch copy, half
// compacted: the next start copies the newest checkpoint again and rebases at its next
// checkpoint.
func (s *Service) checkpoint(ctx context.Context, db *projections.DB, seq uint64) error {
	rebased := false
	if k := s.opts.RebaseTables; k > 0 {
		if n := db.Level0Tables(); n > k {
			rebased = true
			start := time.Now()
			if err := db.Rebase(ctx); err != nil {
				return err
			}
			s.rebases.Add(1)
			m := db.Metrics()
			s.log.Info("replay: rebased the as_of chain", "at", seq, "level0_tables", n,
				"tables", m.Total().TablesCount, "bytes", m.Total().TablesSize, "took", time.Since(start))
		}
	}
	return s.ckpts.takeAt(db, seq, rebased)
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
// Each table is tagged with its applied sequence (TagApplied), so that one open checkpoint can
// answer as of every checkpoint before it (bases.shared).
var fillDB = projections.DBOptions{CacheBytes: 64 << 20, MemTableBytes: 4 << 20, DisableWAL: true, DisableCompactions: true,
	Zstd: true, TagApplied: true, FS: noSyncFS{vfs.Default}}

// chainHead is the filler's copy of the newest checkpoint, brought forward and kept open: the
// next checkpoint is taken from it instead of copying the newest one and opening its hundreds
// of tables again. Only the fill loop's goroutine uses it (and fillGap its own, for a gap).
type chainHead struct {
	dir string
	db  *projections.DB
	seq uint64 // the sequence db has applied
}

func (h *chainHead) close() {
	if h != nil {
		h.db.Close()
		os.RemoveAll(h.dir)
	}
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
		o := fillDB
		o.Cache = s.opts.Cache // nil: its own, of CacheBytes
		db, err = projections.OpenDB(dir, o)
	}
	if err == nil {
		// A checkpoint from before the role holder entries carried their value: the head is
		// then migrated as the live model was at its start, and the batches it mirrors match.
		if _, err = db.MigrateRoleHolders(); err != nil {
			db.Close()
		}
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
