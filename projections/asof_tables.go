package projections

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A DB written without compactions (replay's as_of chain) holds, in each of its tables, the
// writes of the batches between two flushes, the last of them writing the applied sequence.
// Tagging each table with the largest Pebble sequence number it holds (TagApplied: a block
// property) lets one open DB answer as of any sequence it flushed at: an iterator that skips
// the tables tagged after the flush at that sequence reads the model as it stood then (what a
// Pebble snapshot taken then would read). Tables are never rewritten (no compactions), so the
// tags stay true. (The tag is the sequence number rather than the applied sequence because
// Pebble hands a collector no values of set keys.)

// seqNumProperty names the block property: the largest sequence number among a block's (a
// table's) keys, 8 bytes big-endian.
const seqNumProperty = "acl.seqnum"

// seqNumCollector tags the blocks and tables it sees with their largest sequence number.
type seqNumCollector struct {
	block, table uint64
}

func newSeqNumCollector() pebble.BlockPropertyCollector { return &seqNumCollector{} }

func (c *seqNumCollector) Name() string { return seqNumProperty }

func (c *seqNumCollector) AddPointKey(k pebble.InternalKey, _ []byte) error {
	c.block = max(c.block, uint64(k.SeqNum()))
	return nil
}

func (c *seqNumCollector) AddRangeKeys(sstable.Span) error {
	return fmt.Errorf("projections: %s: range keys are not written", seqNumProperty)
}

func (c *seqNumCollector) AddCollectedWithSuffixReplacement([]byte, []byte, []byte) error {
	return fmt.Errorf("projections: %s: no suffix replacement", seqNumProperty)
}

func (c *seqNumCollector) SupportsSuffixReplacement() bool { return false }

func (c *seqNumCollector) FinishDataBlock(buf []byte) ([]byte, error) {
	buf = binary.BigEndian.AppendUint64(buf, c.block)
	c.table = max(c.table, c.block)
	c.block = 0
	return buf, nil
}

func (c *seqNumCollector) AddPrevDataBlockToIndexBlock() {}

// FinishIndexBlock tags an index block with the table's largest so far: at least its blocks'.
func (c *seqNumCollector) FinishIndexBlock(buf []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(buf, c.table), nil
}

func (c *seqNumCollector) FinishTable(buf []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(buf, max(c.table, c.block)), nil
}

// seqNumUpTo keeps the blocks and tables tagged at or below a sequence number (and any without
// a tag: a DB read with it must have none, see FlushedTables).
type seqNumUpTo uint64

func (f seqNumUpTo) Name() string { return seqNumProperty }

func (f seqNumUpTo) Intersects(prop []byte) (bool, error) {
	if len(prop) != 8 {
		return true, nil
	}
	return binary.BigEndian.Uint64(prop) <= uint64(f), nil
}

func (f seqNumUpTo) SyntheticSuffixIntersects(prop []byte, _ []byte) (bool, error) {
	return f.Intersects(prop)
}

// Flushes are the points a DB written with TagApplied can be read as of (NewOverlayAsOf): for
// each table, oldest first, the applied sequence it holds and its largest sequence number.
//
// A rebased DB (Rebase) also holds tables below level 0: the whole model as of the rebase,
// compacted. They are one point, the rebase's applied sequence (from), that every later flush
// reads through; a moment before it cannot be read from the DB (the compaction kept only the
// newest version of each key).
type Flushes struct {
	applied, seqNum []uint64
	files           []string // the tables' paths
	from            uint64   // the rebase's applied sequence (0: not rebased)
}

// Flushes lists db's tables as points to read it as of; ok is false when a table carries no
// tag (written by an older release, or not by a projector), and the DB cannot be read so.
func (db *DB) Flushes() (f *Flushes, ok bool, err error) {
	levels, err := db.pb.SSTables(pebble.WithProperties())
	if err != nil {
		return nil, false, fmt.Errorf("projections: list tables: %w", err)
	}
	type flush struct {
		applied, seqNum uint64
		file            string
	}
	var all, rebased []flush
	for level, tables := range levels {
		for _, t := range tables {
			// The writer stores a block property as a short id byte, then the table's value.
			if t.Properties == nil || len(t.Properties.UserProperties[seqNumProperty]) != 1+8 || t.Virtual {
				return nil, false, nil
			}
			file := filepath.Join(db.dir, fmt.Sprintf("%06d.sst", uint64(t.FileNum)))
			applied, err := db.tableApplied(file)
			if err != nil {
				return nil, false, err
			}
			fl := flush{applied, uint64(t.LargestSeqNum), file}
			if level == 0 {
				all = append(all, fl)
			} else {
				rebased = append(rebased, fl)
			}
		}
	}
	f = &Flushes{}
	if len(rebased) > 0 {
		// One table of a rebase begins with the applied sequence (the smallest key); all of
		// them are read together, at the largest sequence number among them.
		var top uint64
		for _, fl := range rebased {
			f.from, top = max(f.from, fl.applied), max(top, fl.seqNum)
		}
		if f.from == 0 {
			return nil, false, nil
		}
		for _, fl := range rebased {
			f.applied, f.seqNum, f.files = append(f.applied, f.from), append(f.seqNum, top), append(f.files, fl.file)
		}
	}
	slices.SortFunc(all, func(a, b flush) int { return cmp.Compare(a.seqNum, b.seqNum) })
	for _, fl := range all {
		if fl.applied == 0 || (len(f.applied) > 0 && fl.applied < f.applied[len(f.applied)-1]) ||
			(len(f.seqNum) > 0 && fl.seqNum <= f.seqNum[len(f.seqNum)-1]) {
			return nil, false, nil // not a projector's flushes, in order
		}
		f.applied, f.seqNum, f.files = append(f.applied, fl.applied), append(f.seqNum, fl.seqNum), append(f.files, fl.file)
	}
	return f, true, nil
}

// From is the earliest moment the DB can be read as of: the applied sequence of its rebase, 0
// when it was never rebased (every moment from the empty model on).
func (f *Flushes) From() uint64 { return f.from }

// Tables is how many tables the DB reads through at its newest point.
func (f *Flushes) Tables() int { return len(f.files) }

// tableApplied reads the applied sequence a table holds: its first key is appliedKey.
func (db *DB) tableApplied(path string) (uint64, error) {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return 0, fmt.Errorf("projections: open table: %w", err)
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return 0, fmt.Errorf("projections: open table %s: %w", path, err)
	}
	r, err := sstable.NewReader(context.Background(), readable, db.popts.MakeReaderOptions())
	if err != nil {
		readable.Close()
		return 0, fmt.Errorf("projections: open table %s: %w", path, err)
	}
	defer r.Close()
	it, err := r.NewPointIter(context.Background(), sstable.IterOptions{})
	if err != nil {
		return 0, fmt.Errorf("projections: read table %s: %w", path, err)
	}
	defer it.Close()
	kv := it.First()
	if kv == nil || !bytes.Equal(kv.K.UserKey, appliedKey) || kv.K.Kind() != pebble.InternalKeyKindSet {
		return 0, nil
	}
	v, _, err := kv.Value(nil)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// Floor is the applied sequence of the last table flushed at or below seq (0: none): the
// moment nearest seq that NewOverlayAsOf reads without replaying.
func (f *Flushes) Floor(seq uint64) uint64 {
	_, applied := f.upTo(seq)
	return applied
}

// upTo is the largest sequence number of the tables flushed at or below applied sequence seq,
// and the applied sequence of the last of them (0, 0: none).
func (f *Flushes) upTo(seq uint64) (seqNum, applied uint64) {
	i, found := slices.BinarySearch(f.applied, seq)
	if found {
		for i+1 < len(f.applied) && f.applied[i+1] == seq {
			i++
		}
		return f.seqNum[i], f.applied[i]
	}
	if i == 0 {
		return 0, 0
	}
	return f.seqNum[i-1], f.applied[i-1]
}

// tablesUpTo reads a batch over the tables of its DB tagged at or below a sequence: the model
// as of that sequence with the batch's writes over it. Gets go through one iterator, made
// again when the batch has grown since (Pebble's Get has no table filter).
type tablesUpTo struct {
	b       *pebble.Batch
	opts    pebble.IterOptions
	applied [8]byte // what the tables say they applied: appliedKey is in every table, and
	// an iterator seeking it reads a block of each (a Get stops at the newest)

	mu    sync.Mutex
	it    *pebble.Iterator
	count uint32 // b.Count() when it was made
}

func newTablesUpTo(b *pebble.Batch, f *Flushes, seq uint64) (*tablesUpTo, error) {
	if seq < f.from {
		// The rebase's tables hold the model as of from only: reading them as of an earlier
		// moment would mix later states into it.
		return nil, fmt.Errorf("projections: read as of %d a DB rebased at %d", seq, f.from)
	}
	seqNum, applied := f.upTo(seq)
	r := &tablesUpTo{b: b, opts: pebble.IterOptions{PointKeyFilters: []pebble.BlockPropertyFilter{seqNumUpTo(seqNum)}}}
	binary.BigEndian.PutUint64(r.applied[:], applied)
	return r, nil
}

func (r *tablesUpTo) Get(key []byte) ([]byte, io.Closer, error) {
	if bytes.Equal(key, appliedKey) {
		return r.getApplied()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.it == nil || r.count != r.b.Count() {
		if r.it != nil {
			r.it.Close()
			r.it = nil
		}
		it, err := r.b.NewIter(&r.opts)
		if err != nil {
			return nil, nil, fmt.Errorf("projections: read as of tables: %w", err)
		}
		r.it, r.count = it, r.b.Count()
	}
	if !r.it.SeekPrefixGE(key) || !bytes.Equal(r.it.Key(), key) {
		if err := r.it.Error(); err != nil {
			return nil, nil, err
		}
		return nil, nil, pebble.ErrNotFound
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, nil, err
	}
	return slices.Clone(v), io.NopCloser(nil), nil
}

// getApplied reads appliedKey from the batch, else answers the tables' (none applied: not
// found, as in an empty model).
func (r *tablesUpTo) getApplied() ([]byte, io.Closer, error) {
	it, err := r.b.NewBatchOnlyIter(context.Background(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("projections: read the overlay's applied sequence: %w", err)
	}
	defer it.Close()
	if it.SeekGE(appliedKey) && bytes.Equal(it.Key(), appliedKey) {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, err
		}
		return slices.Clone(v), io.NopCloser(nil), nil
	}
	if err := it.Error(); err != nil {
		return nil, nil, err
	}
	if r.applied == [8]byte{} {
		return nil, nil, pebble.ErrNotFound
	}
	return slices.Clone(r.applied[:]), io.NopCloser(nil), nil
}

func (r *tablesUpTo) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	opts := r.opts
	if o != nil {
		opts = *o
		opts.PointKeyFilters = append(slices.Clip(o.PointKeyFilters), r.opts.PointKeyFilters...)
	}
	return r.b.NewIter(&opts)
}

func (r *tablesUpTo) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.it != nil {
		r.it.Close()
		r.it = nil
	}
}
