package projections

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DBOptions sizes Pebble. Zero values take the defaults.
type DBOptions struct {
	CacheBytes    int64  // block cache; default 64 MiB
	MemTableBytes uint64 // memtable; default 32 MiB
	ReadOnly      bool   // open a checkpoint for reading only
	// DisableWAL, DisableCompactions and FS serve throw-away copies (replay's as_of states): no
	// write-ahead log, no background compactions (a copy lives for a few queries), and a file
	// system that may skip fsyncs. Never for the live model.
	DisableWAL         bool
	DisableCompactions bool
	FS                 vfs.FS // nil: the operating system's
	// Zstd compresses data blocks with zstd instead of Snappy (index and filter blocks stay
	// fast to open): about a third smaller, slower to write and read. For replay's as_of
	// checkpoints, kept on disk for long and read rarely; never for the live model.
	Zstd bool
	// TagApplied tags each table written with its largest sequence number (asof_tables.go) and
	// keeps each flush one table, so that NewOverlayAsOf can read the DB as of any applied
	// sequence it flushed at. For replay's as_of chain (never compacted); never for the live
	// model.
	TagApplied bool
	// Cache, when set, is the block cache, shared with other DBs (replay's open checkpoints);
	// CacheBytes is then ignored. The caller keeps its reference and releases it after them.
	Cache *pebble.Cache
}

// noRecycleCleaner deletes obsolete files as pebble.DeleteCleaner does, and keeps no WAL for
// reuse. Pebble keeps up to three obsolete WALs (MemTableStopWritesThreshold+1) to write the next
// ones into, each as large as a memtable's log: 36 of the read model's 84 MB right after the
// import of the compare shape, until a restart deleted them. Its only switch for that is a
// cleaner that needs the files' contents (base.NeedsFileContents, whose method is unexported):
// the embedded ArchiveCleaner, one level down, lends the mark, and DeleteCleaner's Clean, one
// level up, is the one called. TestWALsNotKeptForReuse fails if a Pebble upgrade changes that.
type noRecycleCleaner struct {
	pebble.DeleteCleaner
	archiveMark
}

// archiveMark carries ArchiveCleaner's methods one level below noRecycleCleaner's own.
type archiveMark struct{ pebble.ArchiveCleaner }

// MemtableReserve is how much of its block cache a DB's memtables of memtableBytes take: Pebble
// reserves each memtable's size in the cache, the one being written and the one it keeps for
// reuse, so a cache must be that much larger than the blocks it is meant to hold. (The read
// model's 64 MiB cache beside its 32 MiB memtables held no block at all once both had grown to
// full size: after an import of 2*10^5 records, 1.6 million block reads and 170,000 hits.)
func MemtableReserve(memtableBytes uint64) int64 { return 2 * int64(memtableBytes) }

// DB is the read model's Pebble database.
type DB struct {
	pb     *pebble.DB
	popts  *pebble.Options // what pb was opened with, defaults filled (asof_tables.go reads tables with them)
	dir    string
	shared sharedSnapshots // the live DB's snapshot shared by queries (engine_snapshot.go)
}

// OpenDB opens (creating if needed) the read model in dir.
func OpenDB(dir string, o DBOptions) (*DB, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 32 << 20
	}
	// At least 4 MiB: a batch large enough to be kept by reference as a flushable batch (half
	// the memtable) must be larger than what Batch.Reset keeps for reuse (1 MiB), because the
	// projector reuses its batch.
	o.MemTableBytes = max(o.MemTableBytes, 4<<20)
	cache := o.Cache
	if cache == nil {
		reserve := int64(0)
		if !o.ReadOnly {
			reserve = MemtableReserve(o.MemTableBytes)
		}
		cache = pebble.NewCache(o.CacheBytes + reserve)
		defer cache.Unref() // Pebble holds its own reference while open
	}
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       o.MemTableBytes,
		ReadOnly:           o.ReadOnly,
		DisableWAL:         o.DisableWAL,
		Logger:             quietLogger{},
		Cleaner:            noRecycleCleaner{},
	}
	opts.DisableAutomaticCompactions = o.DisableCompactions
	// Table statistics serve compaction heuristics only, and collecting them reads every table
	// of a freshly opened copy in the background.
	opts.DisableTableStats = o.DisableCompactions
	// A copy was just made from a complete checkpoint: checking that each of its hundreds of
	// tables exists with its size costs a stat each, for every as_of answer.
	opts.DisableConsistencyCheck = o.DisableCompactions
	if o.DisableCompactions {
		// Pebble stalls writes while level 0 is too deep, until compactions reduce it: without
		// compactions that is forever (a copy of a level-0-heavy checkpoint hung its first
		// memtable rotation). A copy lives for a few queries; it reads a deeper level 0 instead.
		opts.L0StopWritesThreshold = math.MaxInt32
	}
	if o.FS != nil {
		opts.FS = o.FS
	}
	if o.TagApplied {
		opts.BlockPropertyCollectors = []func() pebble.BlockPropertyCollector{newSeqNumCollector}
		// One table per flush: a table split off would not begin with the applied sequence.
		// (Flushes reports a DB with such a table as not readable as of its flushes.)
		opts.FlushSplitBytes = math.MaxInt64
		opts.TargetFileSizes[0] = math.MaxInt64 / 2
		// The chain is checkpointed every CheckpointEvery events, and a checkpoint copies the
		// manifest record by record with a 32 KiB buffer each (Pebble's
		// writeCheckpointManifest). Past this size Pebble starts a new manifest (one snapshot
		// record) once the edits since the last one list more tables than it did or than the
		// head has: with 1 that is its only rule, so a head of n flushes keeps at most about n/2
		// records instead of n (128 MB, the default, is never reached), and a checkpoint at 10^5
		// records allocates ~2 MB instead of 9.
		opts.MaxManifestFileSize = 1
		// A rebase (Rebase) writes the model into the levels below: a few large tables (the
		// default doubling from level 0's would overflow).
		for i := 1; i < len(opts.TargetFileSizes); i++ {
			opts.TargetFileSizes[i] = rebaseTableBytes
		}
	}
	// Bloom filters: the projector reads each aggregate before its first event, and for a new
	// one (most of them while catching up) the read must not visit every level's blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		if o.Zstd {
			opts.Levels[i].Compression = func() *block.CompressionProfile { return block.GoodCompression }
		}
	}
	pb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("projections: open pebble %s: %w", dir, err)
	}
	popts := opts.Clone()
	popts.EnsureDefaults()
	return &DB{pb: pb, popts: popts, dir: dir}, nil
}

// Close flushes and closes Pebble.
func (db *DB) Close() error {
	db.shared.close()
	if err := db.pb.Close(); err != nil {
		return fmt.Errorf("projections: close pebble %s: %w", db.dir, err)
	}
	return nil
}

// Dir is the directory the DB was opened on.
func (db *DB) Dir() string { return db.dir }

// Metrics are Pebble's figures of the DB (memtables, tables by level, compactions, cache).
func (db *DB) Metrics() *pebble.Metrics { return db.pb.Metrics() }

// Checkpoint writes a consistent copy of the DB to dir (which must not exist), hard-linking
// files where it can. OpenDB on dir gives the read model as of the checkpoint's applied sequence.
func (db *DB) Checkpoint(dir string) error {
	if err := db.pb.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("projections: checkpoint to %s: %w", dir, err)
	}
	return nil
}

// Flush writes the memtables to sstables, so that a checkpoint taken next holds no WAL for its
// opener to replay (replay checkpoints the live model every few thousand events).
func (db *DB) Flush() error {
	if err := db.pb.Flush(); err != nil {
		return fmt.Errorf("projections: flush: %w", err)
	}
	return nil
}

// Compact flushes the memtables and compacts the whole key space, so that point reads after a
// bulk load (a rebuild, a long catch-up) do not visit every level-0 table. Pebble compacts on
// its own as well; this is for when the answer must be fast at once.
func (db *DB) Compact(ctx context.Context) error {
	if err := db.pb.Flush(); err != nil {
		return fmt.Errorf("projections: flush: %w", err)
	}
	if err := db.pb.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("projections: compact: %w", err)
	}
	return nil
}

// rebaseTableBytes is the size of the tables a rebase writes: at 10^6 records the model is a
// handful of them.
const rebaseTableBytes = 64 << 20

// Level0Tables is how many tables the DB holds in level 0: one per flush of a DB without
// compactions (replay's as_of chain).
func (db *DB) Level0Tables() int {
	return int(db.pb.Metrics().Levels[0].TablesCount)
}

// Rebase compacts a DB written with TagApplied and without compactions (replay's as_of chain
// head) into a few tables below level 0, the model as of its applied sequence: the flushes
// after it are read through them (Flushes), not through every flush since the chain began.
// Its checkpoints before keep their own tables (hard links); the rebase writes the model
// again, once.
func (db *DB) Rebase(ctx context.Context) error {
	if err := db.Compact(ctx); err != nil {
		return fmt.Errorf("projections: rebase: %w", err)
	}
	return nil
}

// Applied reads the last applied sequence committed in the DB (0 when none).
func (db *DB) Applied() (uint64, error) { return readApplied(db.pb) }

// readApplied reads the applied sequence from the DB, a snapshot or a batch.
func readApplied(r reader) (uint64, error) { return readSeq(r, appliedKey) }

// readSeq reads a sequence kept under k (appliedKey, holdersKey); 0 when there is none.
func readSeq(r reader, k []byte) (uint64, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projections: read %s: %w", k, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("projections: %s of %d bytes", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// quietLogger drops Pebble's informational lines and keeps its background errors in the log.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	log.Printf("pebble: "+format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// OpenTables makes Pebble open every table of the DB now rather than on the reads that first
// need each: a point read of a key that is absent but lies within every table's range (each
// table the projector writes holds the applied sequence, the smallest key, and the key read
// sorts just after it and before every other) consults every table's filter. replay opens its
// checkpoints for as_of with it while the events to replay are fetched: the hundreds of
// level-0 tables of a checkpoint are then opened alongside the fetch, not after it.
func (db *DB) OpenTables() error {
	_, closer, err := db.pb.Get(openTablesKey)
	if err == nil {
		closer.Close()
		return nil
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("projections: open tables: %w", err)
}

var openTablesKey = append(append([]byte(nil), appliedKey...), 0)
