package main

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestPadFor: the pad reserves the memtables' allowance they do not use, never less than
// nothing, so that the shared cache keeps --cache-mb of blocks whether the memtables are
// empty (after a start) or full (under writes).
func TestPadFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name                  string
		reserve, used, unseen int64
		want                  int64
	}{
		{"memtables small after a start", 80 * mb, 3 * mb, 8 * mb, 69 * mb},
		{"memtables full under writes", 80 * mb, 72 * mb, 8 * mb, 0},
		{"more in use than allowed", 80 * mb, 90 * mb, 8 * mb, 0},
		{"none open yet", 80 * mb, 0, 8 * mb, 72 * mb},
	} {
		if got := padFor(c.reserve, c.used, c.unseen); got != c.want {
			t.Errorf("%s: pad %d MiB, want %d", c.name, got/mb, c.want/mb)
		}
	}
}

// TestCachePadKeepsBlocks: on a real Pebble cache, the pad takes the memtables' unused
// allowance and no more, also when it changes: blocks within --cache-mb stay cached across
// adjustments (reserving the next pad before releasing the last evicted every block), and a
// pad that grows takes its room back from the blocks.
func TestCachePadKeepsBlocks(t *testing.T) {
	const mb = 1 << 20
	cache := pebble.NewCache(16 * mb) // 8 MiB of blocks, 8 of memtable allowance
	defer cache.Unref()
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Cache: cache, MemTableSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 100)
	for i := range 40_000 { // some 4 MB of blocks once read
		if err := db.Set(fmt.Appendf(nil, "k%06d", i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var used int64
	pad := &cachePad{cache: cache, reserve: 8 * mb, used: func() int64 { return used }}
	defer func() { pad.release() }()
	pad.adjust(0)
	readAll()
	held := cache.Metrics().Size
	if held < 2*mb {
		t.Fatalf("the cache holds %d bytes of blocks with the pad; want the data read", held)
	}
	for _, u := range []int64{1 * mb, 2 * mb, 0} { // the memtables' use changes: the pad follows
		used = u
		pad.adjust(0)
		if got := cache.Metrics().Size; got < held {
			t.Fatalf("memtables at %d MiB: %d bytes of blocks left of %d", u/mb, got, held)
		}
	}
	used = 0
	pad.reserve = 15 * mb // a pad larger than the room for blocks takes it
	pad.adjust(0)
	if got := cache.Metrics().Size; got > 2*mb {
		t.Fatalf("with a 15 MiB pad in a 16 MiB cache, %d bytes of blocks stay", got)
	}
}
