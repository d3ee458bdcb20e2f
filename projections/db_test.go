package projections

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
)

// TestCacheHoldsBlocksBesideMemtables: Pebble reserves each memtable's size in the block
// cache, so a DB whose memtables have grown to full size must still keep CacheBytes of blocks.
// Without MemtableReserve the 8 MiB cache beside 4 MiB memtables held nothing once written to.
func TestCacheHoldsBlocksBesideMemtables(t *testing.T) {
	db, err := OpenDB(t.TempDir(), DBOptions{CacheBytes: 8 << 20, MemTableBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 200)
	key := func(i int) []byte { return fmt.Appendf(nil, "k%08d", i) }
	const n = 100_000 // 20 MB: the memtables grow to their full size and flush several times
	for i := range n {
		if err := db.pb.Set(key(i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 3 {
		_, closer, err := db.pb.Get(key(i))
		if err != nil {
			t.Fatal(err)
		}
		closer.Close()
	}
	m := db.Metrics()
	if held := m.BlockCache.Size; held < 4<<20 {
		t.Errorf("the block cache holds %d bytes beside %d of memtables; want most of its 8 MiB", held, m.MemTable.Size)
	}
}

// TestWALsNotKeptForReuse: once their memtables are flushed, the read model's obsolete WALs are
// deleted, not kept for Pebble to write the next logs into (noRecycleCleaner). With Pebble's
// default cleaner three of them, each as large as a memtable's log, stay on disk.
func TestWALsNotKeptForReuse(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(dir, DBOptions{MemTableBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 200)
	for i := range 100_000 { // 20 MB: several memtables, each rotating the WAL
		if err := db.pb.Set(fmt.Appendf(nil, "k%08d", i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Pebble deletes obsolete files in the background.
	var logs []string
	for range 100 {
		logs, _ = filepath.Glob(filepath.Join(dir, "*.log"))
		if len(logs) <= 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("WALs left after the flush: %v; want only the live one", logs)
}

// chainHead opens a model as replay's chain head is opened (tagged, never compacted) and
// flushes it n times, one small table each, as the chain flushes every CheckpointEvery events.
func chainHead(tb testing.TB, n int) *DB {
	tb.Helper()
	db, err := OpenDB(tb.TempDir(), DBOptions{CacheBytes: 8 << 20, MemTableBytes: 4 << 20, TagApplied: true, DisableCompactions: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for i := range n {
		if err := db.pb.Set(fmt.Appendf(nil, "k%08d", i), []byte("v"), pebble.NoSync); err != nil {
			tb.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// manifestRecords counts the records of the one MANIFEST file in dir.
func manifestRecords(t *testing.T, dir string) int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if err != nil || len(paths) != 1 {
		t.Fatalf("manifests in %s: %v %v", dir, paths, err)
	}
	f, err := os.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := record.NewReader(f, 0)
	n := 0
	for {
		rr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rr); err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// TestChainHeadManifestRotates: the chain head's manifest is rewritten as one snapshot from
// time to time instead of growing by a record per flush for the head's whole life. A checkpoint
// copies the manifest record by record, each with a buffer of its own (Pebble's
// writeCheckpointManifest: io.Copy, 32 KiB), so with Pebble's default (a new manifest only past
// 128 MB) every checkpoint of a head of n flushes allocated n*32 KiB: 9 MB per checkpoint,
// 14 % of acld's allocation in the commands workload after an import of the compare shape.
// Without MaxManifestFileSize the checkpoint below holds 301 records.
func TestChainHeadManifestRotates(t *testing.T) {
	const flushes = 300
	db := chainHead(t, flushes)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := db.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	if n := manifestRecords(t, dir); n > flushes/2 {
		t.Errorf("the checkpoint's manifest holds %d records after %d flushes; want at most %d", n, flushes, flushes/2)
	}
	// The checkpoint is the head: every flushed key is there.
	cp, err := OpenDB(dir, DBOptions{CacheBytes: 1 << 20, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	for i := range flushes {
		if _, closer, err := cp.pb.Get(fmt.Appendf(nil, "k%08d", i)); err != nil {
			t.Fatalf("key %d: %v", i, err)
		} else {
			closer.Close()
		}
	}
}

// BenchmarkChainHeadCheckpoint: what a checkpoint of a head of 300 flushes costs (the compare
// shape's head at 10^5 records after its workloads has ~270).
func BenchmarkChainHeadCheckpoint(b *testing.B) {
	db := chainHead(b, 300)
	dir := b.TempDir()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := db.Checkpoint(filepath.Join(dir, strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}
