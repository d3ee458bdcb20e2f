package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// An as_of base (a checkpoint of replay's chain, written without compactions) is one table per
// flush, and every table spans the whole key space (each flush writes the applied sequence): a
// point read checks the filter of every table up to the moment. At 10^6 records and 728
// tables that was 0.4-0.9 ms a read; an answer at a moment whose events update existing states
// (every moment of a running service, unlike a bulk load's creations) reads about one state per
// event, and took 0.7-1 s.
//
// Versions keeps every version of the states (tenants, principals, records) the tables hold in
// a compacted store of its own, keyed by the state's key and then the sequence that wrote it,
// descending: the state as of a flush is then one seek. A stored state starts with the
// sequence of the last event applied to it (the writer writes a state only when it applies
// one of its events, and never deletes one), so the version at or below a flush's applied
// sequence is the state the flush left. The store is filled from the tables (AddTables), which
// never change; index entries are still read from them.
type Versions struct {
	pb  *pebble.DB
	dir string

	mu      sync.Mutex // one AddTables at a time
	applied Watermark  // the applied sequence of the last table added
}

// versionsAppliedKey holds the applied sequence of the last table added; '!' starts no tenant.
var versionsAppliedKey = []byte("!applied")

// versionsFlushPrefix, then an applied sequence, marks a table added at that sequence (Covers).
var versionsFlushPrefix = []byte("!flush/")

func versionsFlushKey(applied uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(versionsFlushPrefix), applied)
}

// OpenVersions opens (creating if needed) the versions in dir, reading through cache (nil: its
// own). It has no WAL: each batch carries the applied sequence of the tables it added, and a
// crash loses whole batches, which AddTables adds again.
func OpenVersions(dir string, cache *pebble.Cache) (*Versions, error) {
	if cache == nil {
		cache = pebble.NewCache(8<<20 + MemtableReserve(versionsMemtable))
		defer cache.Unref()
	}
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       versionsMemtable,
		DisableWAL:         true,
		Logger:             quietLogger{},
	}
	// Written once and kept: zstd in the two lowest levels, which hold nearly all of it (at
	// 10^6 records 85 MB against Snappy's 128).
	for i := len(opts.Levels) - 2; i < len(opts.Levels); i++ {
		opts.Levels[i].Compression = func() *block.CompressionProfile { return block.GoodCompression }
	}
	pb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("projections: open state versions %s: %w", dir, err)
	}
	v := &Versions{pb: pb, dir: dir}
	applied, err := readSeq(pb, versionsAppliedKey)
	if err != nil {
		pb.Close()
		return nil, err
	}
	v.applied.Advance(applied)
	return v, nil
}

// versionsMemtable is the smallest memtable: a table's states are written in one batch.
const versionsMemtable = 4 << 20

// VersionsMemtableReserve is what the store's memtable takes from a cache given to
// OpenVersions (MemtableReserve).
func VersionsMemtableReserve() int64 { return MemtableReserve(versionsMemtable) }

// Applied is the applied sequence of the last table added.
func (v *Versions) Applied() uint64 { return v.applied.Load() }

// Covers says whether the versions answer as of applied sequence floor: a table flushed at
// floor was added. The newest version at or below floor is the state as of floor only where
// floor is a flush of the tables added: a state written before another floor and again after
// it, before the next flush of those tables, has only its later version stored. Checkpoints
// of another chain flush elsewhere: a back-fill on a finer grid after a restart (the budget
// coarsened the grid and the configuration changed since), a rebuilt chain, a chain head's own
// flushes when its memtable fills. Tables are added in the order of their applied sequences,
// each one's states since its chain's previous flush, so any floor that is one of theirs is
// answered exactly, whichever chains they came from.
func (v *Versions) Covers(floor uint64) bool {
	if floor == 0 {
		return true // before anything: no state
	}
	if floor > v.Applied() {
		return false
	}
	_, closer, err := v.pb.Get(versionsFlushKey(floor))
	if err != nil {
		return false
	}
	closer.Close()
	return true
}

// Metrics are Pebble's figures of the versions' store.
func (v *Versions) Metrics() *pebble.Metrics { return v.pb.Metrics() }

// Close writes the memtable out (there is no WAL) and closes the store.
func (v *Versions) Close() error {
	if err := v.pb.Flush(); err != nil {
		v.pb.Close()
		return fmt.Errorf("projections: flush state versions: %w", err)
	}
	if err := v.pb.Close(); err != nil {
		return fmt.Errorf("projections: close state versions: %w", err)
	}
	return nil
}

// AddTables adds the states of db's tables flushed after Applied (f are db's Flushes), oldest
// first, point by point: the tables of a rebase (one point, several tables) are added whole
// before the point is marked.
func (v *Versions) AddTables(db *DB, f *Flushes) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return f.points(func(point uint64, files []string) error {
		if point <= v.applied.Load() {
			return nil
		}
		return v.addPoint(db, files, point, true)
	})
}

// AddOlder adds the states of db's tables at the points up to Applied that Covers does not
// answer, oldest first: the base of an older segment of a rebased chain (its moments are before
// the shared base's rebase, whose tables AddTables took from the rebase on). A version is a
// fact (a state as the event at its sequence left it), so adding it after newer ones changes no
// answer; a point is marked once its tables are added and the point before it is answered
// (by these tables, or by another chain's: the versions at or below it are then all there), so
// every marked point stays answered exactly.
func (v *Versions) AddOlder(db *DB, f *Flushes) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return f.points(func(point uint64, files []string) error {
		if point > v.applied.Load() || v.Covers(point) {
			return nil
		}
		return v.addPoint(db, files, point, false)
	})
}

// points calls fn with each point of f, oldest first, and its tables.
func (f *Flushes) points(fn func(point uint64, files []string) error) error {
	for i := 0; i < len(f.applied); {
		j := i + 1
		for j < len(f.applied) && f.applied[j] == f.applied[i] {
			j++
		}
		if err := fn(f.applied[i], f.files[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// versionsBatchBytes bounds a batch of versions: a rebase's tables hold the whole model.
const versionsBatchBytes = 4 << 20

// addPoint adds the states of files, the tables of one point, in batches of at most
// versionsBatchBytes, then marks the point (and, when advance, makes it the applied sequence).
func (v *Versions) addPoint(db *DB, files []string, point uint64, advance bool) error {
	b := v.pb.NewBatch()
	defer func() { b.Close() }()
	for _, file := range files {
		err := db.tableStates(file, func(k, val []byte) error {
			if len(val) < 8 {
				return fmt.Errorf("projections: state %q of %d bytes has no sequence", k, len(val))
			}
			if err := b.Set(versionKey(k, binary.BigEndian.Uint64(val)), val, nil); err != nil {
				return err
			}
			if b.Len() < versionsBatchBytes {
				return nil
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
			return nil
		})
		if err != nil {
			return fmt.Errorf("projections: add the states of %s: %w", file, err)
		}
	}
	var err error
	if advance {
		var seq [8]byte
		binary.BigEndian.PutUint64(seq[:], point)
		err = b.Set(versionsAppliedKey, seq[:], nil)
	}
	if err == nil {
		err = b.Set(versionsFlushKey(point), nil, nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("projections: mark the states of %d: %w", point, err)
	}
	if advance {
		v.applied.Advance(point)
	}
	return nil
}

// versionKey is a state's key, then the sequence that wrote it complemented (the newest
// version first).
func versionKey(k []byte, seq uint64) []byte {
	out := make([]byte, 0, len(k)+8)
	out = append(out, k...)
	return binary.BigEndian.AppendUint64(out, ^seq)
}

// at reads state k as the flush at applied sequence floor left it, its newest version at or
// below floor, through it (an iterator of the store, reused: a new one per read opens an
// iterator of each level). floor must be Covered.
func (v *Versions) at(it **pebble.Iterator, k []byte, floor uint64) ([]byte, bool, error) {
	if *it == nil {
		i, err := v.pb.NewIter(nil)
		if err != nil {
			return nil, false, fmt.Errorf("projections: read state versions: %w", err)
		}
		*it = i
	}
	i := *it
	if !i.SeekGE(versionKey(k, floor)) {
		return nil, false, i.Error()
	}
	if got := i.Key(); len(got) != len(k)+8 || !bytes.HasPrefix(got, k) {
		return nil, false, nil
	}
	val, err := i.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return slices.Clone(val), true, nil
}

// tableStates calls fn with every state a table of db holds (a table holds at most one
// version of a key: a flush writes the newest, a rebase's compaction keeps the newest).
func (db *DB) tableStates(path string, fn func(k, v []byte) error) error {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return fmt.Errorf("projections: open table: %w", err)
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("projections: open table %s: %w", path, err)
	}
	r, err := sstable.NewReader(context.Background(), readable, db.popts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return fmt.Errorf("projections: open table %s: %w", path, err)
	}
	defer r.Close()
	it, err := r.NewPointIter(context.Background(), sstable.IterOptions{})
	if err != nil {
		return fmt.Errorf("projections: read table %s: %w", path, err)
	}
	defer it.Close()
	var buf []byte
	for kv := it.First(); kv != nil; kv = it.Next() {
		if !isStateKey(kv.K.UserKey) {
			continue
		}
		// A rebase's compaction may write a set over a deleted key as SETWITHDEL.
		if k := kv.K.Kind(); k != pebble.InternalKeyKindSet && k != pebble.InternalKeyKindSetWithDelete {
			return fmt.Errorf("projections: table %s: state %q written as %s", path, kv.K.UserKey, kv.K.Kind())
		}
		v, _, err := kv.Value(buf[:0])
		if err != nil {
			return err
		}
		if err := fn(kv.K.UserKey, v); err != nil {
			return err
		}
	}
	return it.Error()
}

// isStateKey says whether k is a tenant's, a principal's or a record's stored state (its value
// starts with the sequence that last wrote it).
func isStateKey(k []byte) bool {
	i := bytes.IndexByte(k, sep)
	if i <= 0 || len(k) < i+3 || k[i+2] != sep {
		return false
	}
	switch k[i+1] {
	case tagTenant, tagPrincipal, tagRecord:
		return true
	}
	return false
}

// versioned reads an overlay's base with its states from Versions: a state the overlay has
// written is read from the overlay's batch, any other from the versions as of the base's
// applied sequence, and everything else from the base (reader).
type versioned struct {
	reader
	b     *pebble.Batch
	vs    *Versions
	floor uint64

	mu    sync.Mutex
	it    *pebble.Iterator // over the batch only
	count uint32           // b.Count() when it was made
	vit   *pebble.Iterator // over the versions
}

func (r *versioned) Get(key []byte) ([]byte, io.Closer, error) {
	if !isStateKey(key) {
		return r.reader.Get(key)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok, err := r.batchGet(key)
	if err == nil && !ok {
		v, ok, err = r.vs.at(&r.vit, key, r.floor)
	}
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, pebble.ErrNotFound
	}
	return v, io.NopCloser(nil), nil
}

// batchGet reads key from the overlay's writes only (states are set, never deleted). Called
// with mu held.
func (r *versioned) batchGet(key []byte) ([]byte, bool, error) {
	if r.b.Count() == 0 {
		return nil, false, nil
	}
	if r.it == nil || r.count != r.b.Count() {
		if r.it != nil {
			r.it.Close()
			r.it = nil
		}
		it, err := r.b.NewBatchOnlyIter(context.Background(), nil)
		if err != nil {
			return nil, false, fmt.Errorf("projections: read the overlay's writes: %w", err)
		}
		r.it, r.count = it, r.b.Count()
	}
	if !r.it.SeekGE(key) || !bytes.Equal(r.it.Key(), key) {
		return nil, false, r.it.Error()
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return slices.Clone(v), true, nil
}

func (r *versioned) close() {
	r.mu.Lock()
	for _, it := range []**pebble.Iterator{&r.it, &r.vit} {
		if *it != nil {
			(*it).Close()
			*it = nil
		}
	}
	r.mu.Unlock()
	if c, ok := r.reader.(interface{ close() }); ok {
		c.close()
	}
}
