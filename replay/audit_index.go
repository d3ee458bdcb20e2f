package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Audit is the audit index: a Pebble database of its own, maintained by following the stream,
// that lists for each principal, record and tenant the sequences of the events in its history
// (doc.go has the layout). The stream stays the only source of truth: the index holds no event
// bodies, and can be deleted and rebuilt from sequence 1 at any time.
type Audit struct {
	pb  *pebble.DB
	dir string
	wal bool // written with a write-ahead log (tests: an index of the previous release)

	mu sync.Mutex // serializes batches
	// batch is ApplyMessages', reset for each call (under mu), as the event log's
	// (eventLog.batch): the memtable's half, what Pebble keeps by reference, is above
	// the 1 MiB Reset keeps.
	batch   *pebble.Batch
	cache   *auditCache
	states  *stateFilter // every state key the index holds, once known
	applied projections.Watermark
	// stateReads counts the states read from Pebble (neither in the cache nor new): what the
	// cache and the filter did not spare (under mu).
	stateReads uint64
	warm       auditWarm // the cache's filling (audit_warm.go), under mu
	warmBuf    warmBuf

	stopScan chan struct{} // closed by Close: the state scan gives up
	scanned  chan struct{} // closed when the state scan and the link check have ended
	drift    linkDrift     // what the link check found (checkLinkCounts), before scanned
}

// OpenAudit opens (creating if needed) the audit index in dir.
func OpenAudit(dir string) (*Audit, error) { return openAudit(dir, false, nil) }

// auditWAL: whether the live index writes a write-ahead log. It does not: every batch carries
// the applied sequence (ApplyMessages), so an index that loses its memtables in a crash holds
// the batches up to its last flush and follows the stream again from there, as the spill does.
// A WAL cost the import of the compare shape some 50 MB of disk (its live log and the three
// that Pebble keeps for reuse, 12 MB each) and the CPU of writing every batch twice. Flush
// and Close write the memtables out; the WAL of an index written with one (the previous
// release) is replayed at open as before. Tests set it to write such an index.
var auditWAL = false

// auditMemtable is the live index's memtable size. Pebble keeps two in RSS (the one written
// and the one kept for reuse, projections.MemtableReserve), so 16 MiB cost 32 MB of C heap
// once an import had filled them. 8 MiB: at the compare shape (round 11, one run each, load
// 15-29) the import compacted 25 MB of the index against 16 and the commands workload 22 MB
// more against none, little beside the read model's 93 and 80 MB; acld's CPU per command did
// not move out of the noise. (The read model's own --memtable-mb 8 was measured with it and
// left at 16: its compactions of the import went from 93 to 210 MB.)
const auditMemtable = 8 << 20

// openAudit opens the index (without WAL: auditWAL); bulk serves a rebuild: larger memtables
// (fewer, larger flushes for compactions to merge) and a larger block cache for the state reads of a growing index. shared, when set,
// is the block cache instead of one of its own (see Options.Cache).
func openAudit(dir string, bulk bool, shared *pebble.Cache) (*Audit, error) {
	// stateBytes bounds the cache of states: 32 MiB of heap holds some 250,000 states of the
	// compare shape (117 bytes each, 7/8 of the bound: audit_cache.go), every state of its
	// 2*10^5 records and 10^4 principals and the records a commands workload adds.
	cacheBytes, memBytes, stateBytes := int64(16<<20), uint64(auditMemtable), 32<<20
	if bulk {
		// For the rebuild only: some 10^6 states.
		cacheBytes, memBytes, stateBytes = 64<<20, 64<<20, 128<<20
	}
	cache := shared
	if cache == nil {
		cache = pebble.NewCache(cacheBytes + projections.MemtableReserve(memBytes))
		defer cache.Unref()
	}
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       memBytes,
		DisableWAL:         !auditWAL || bulk,
		Logger:             quietLogger{},
		// A deeper level 0 before compacting, as the command spill has: the index's states and
		// entries are keyed by aggregate, so a flush of the live index overlaps the whole level
		// under it, and with Pebble's default of 4 each compaction of level 0 rewrote it after
		// four flushes (the commands workload at 10^6 records: 76.5 MB compacted for 7.3 MB
		// flushed). State reads stay cheap: each level-0 table's bloom filter answers first.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64,
	}
	// Most state reads are of aggregates seen for the first time: a bloom filter answers those
	// without reading a block.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("replay: open audit index %s: %w", dir, err)
	}
	a := &Audit{pb: pb, dir: dir, wal: !opts.DisableWAL, cache: newAuditCache(stateBytes), states: newStateFilter(stateFilterBits),
		stopScan: make(chan struct{}), scanned: make(chan struct{})}
	seq, err := a.readApplied()
	if err != nil {
		pb.Close()
		return nil, err
	}
	a.applied.Advance(seq)
	a.warm.done = seq == 0 // a new index has no state to read into the cache
	if seq == 0 {
		// An index created empty (a new data directory, a rebuild) holds no state it did not
		// write, so the filter knows every one from the start.
		a.states.known.Store(true)
		close(a.scanned)
	} else {
		go func() {
			defer close(a.scanned)
			scanStates(pb, a.states, a.stopScan)
			// An index a previous release wrote may hold wrong counts of linking records;
			// Run logs them. About as cheap as the scan: at the compare shape (200,000
			// records, 134,708 reverse links) 0.40-0.44 s against its 0.29-0.47 s, at load 6-7.
			a.drift, _ = checkLinkCounts(pb, a.stopScan)
		}()
	}
	return a, nil
}

// Close closes the index.
func (a *Audit) Close() error {
	close(a.stopScan)
	<-a.scanned
	if !a.wal {
		// Without a WAL, what the memtables hold would be lost at close.
		if err := a.pb.Flush(); err != nil {
			a.pb.Close()
			return fmt.Errorf("replay: flush audit index %s: %w", a.dir, err)
		}
	}
	if err := a.pb.Close(); err != nil {
		return fmt.Errorf("replay: close audit index %s: %w", a.dir, err)
	}
	return nil
}

// Checkpoint writes a consistent copy of the index to dir (which must not exist), for Verify.
func (a *Audit) Checkpoint(dir string) error {
	if !a.wal {
		// A checkpoint copies tables and WAL: without a WAL, the memtables' batches only by a flush.
		if err := a.pb.Flush(); err != nil {
			return fmt.Errorf("replay: flush audit index %s: %w", a.dir, err)
		}
	}
	if err := a.pb.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("replay: checkpoint audit index to %s: %w", dir, err)
	}
	return nil
}

// Metrics are Pebble's figures of the index (memtables, tables by level, compactions, cache).
func (a *Audit) Metrics() *pebble.Metrics { return a.pb.Metrics() }

// Applied is the last stream sequence committed to the index.
func (a *Audit) Applied() uint64 { return a.applied.Load() }

func (a *Audit) readApplied() (uint64, error) {
	v, closer, err := a.pb.Get(auditAppliedKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replay: read audit applied sequence: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("replay: audit applied sequence of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putSeq(dst []byte, seq uint64) { binary.BigEndian.PutUint64(dst, seq) }

// ApplyMessages indexes msgs in one batch together with the last applied sequence, so that a
// crash at any point loses whole batches that the stream gives again. Messages at or below the
// applied sequence are skipped.
func (a *Audit) ApplyMessages(msgs []events.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	applied := a.applied.Load()
	if a.batch == nil {
		a.batch = a.pb.NewBatch()
	} else {
		a.batch.Reset()
	}
	w := newAuditWriter(a.pb, a.batch, a.cache, a.states)
	defer func() { a.stateReads += w.reads }()
	last := applied
	for _, m := range msgs {
		if m.Seq <= last {
			continue
		}
		if err := w.apply(m); err != nil {
			return err // the cache holds committed states only (copies): nothing to undo
		}
		last = m.Seq
	}
	if last == applied {
		return nil
	}
	err := w.flush(last)
	if err == nil {
		err = w.b.Commit(pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("replay: commit audit batch up to seq %d: %w", last, err)
	}
	w.committed()
	a.applied.Advance(last)
	if w.reads > 0 && !a.warm.done {
		a.warmCache(int(w.reads) * warmPerRead)
	}
	return nil
}

// DropCache forgets the states the index keeps in memory, as an idle acld does: the next event
// of each aggregate reads its state from the index again.
func (a *Audit) DropCache() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cache.drop()
	a.warm = auditWarm{} // the next batch that reads states fills it again
}

// WaitFor returns once the applied sequence reaches seq, or ctx's error.
func (a *Audit) WaitFor(ctx context.Context, seq uint64) error { return a.applied.WaitFor(ctx, seq) }

// Follower is what the audit index reads from the event store: *events.Store or *events.Fanout.
type Follower interface {
	Follow(ctx context.Context, from uint64, fn func([]events.Message) error) error
}

// Run follows the stream into the index until ctx ends. A lost connection or a failed batch is
// logged and retried from the applied sequence after a pause, so the index heals by itself. It
// also logs wrong counts of linking records that the check at open found (checkLinkCounts).
func (a *Audit) Run(ctx context.Context, store Follower, log *slog.Logger) {
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		a.reportDrift(ctx, log)
	}()
	followHealing(ctx, store, a.Applied, a.ApplyMessages, log, "audit index")
	<-reported
}

// followHealing follows store from applied()+1 into apply until ctx ends; a follow that stops (a
// lost connection, a failed batch) is logged and started again from applied()+1 after a pause
// that doubles up to 5 s.
func followHealing(ctx context.Context, store Follower, applied func() uint64, apply func([]events.Message) error, log *slog.Logger, what string) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := store.Follow(ctx, applied()+1, apply)
		if ctx.Err() != nil {
			return
		}
		log.Warn(what+": follow stopped, retrying", "applied", applied(), "err", err, "pause", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// quietLogger drops Pebble's informational lines and keeps its background errors in the log.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf("pebble: "+format, args...))
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
