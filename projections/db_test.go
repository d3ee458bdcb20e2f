package projections

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
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
