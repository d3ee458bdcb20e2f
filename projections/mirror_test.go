package projections

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestApplyBatchLargerThanMemtable: a committed batch larger than half the receiving DB's
// memtable (a projector's catch-up batch against the as_of chain head's 4 MiB memtable) is
// applied whole. Its representation carries the sequence number of the source's commit;
// without clearing it, Pebble panicked ("flushableBatch.seqNum already set") in the filler's
// goroutine, which left the chain stopped at a fresh start on 10^6 records.
func TestApplyBatchLargerThanMemtable(t *testing.T) {
	dir := t.TempDir()
	open := func(name string, memtable uint64) *DB {
		db, err := OpenDB(filepath.Join(dir, name), DBOptions{CacheBytes: 8 << 20, MemTableBytes: memtable, DisableWAL: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !t.Failed() { // after a panic in its commit, Close would wait for good
				db.Close()
			}
		})
		return db
	}
	src, dst := open("source", 64<<20), open("mirror", 1<<20)
	for _, n := range []int{10, 40000} { // a small batch, then one over the mirror's threshold
		b := src.pb.NewBatch()
		for i := range n {
			k := fmt.Appendf(nil, "k/%d/%06d", n, i)
			if err := b.Set(k, append(k, "-value-value-value"...), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		repr := slices.Clone(b.Repr())
		b.Close()
		if err := applyOrPanic(dst, repr); err != nil {
			t.Fatalf("apply a batch of %d keys (%d bytes): %v", n, len(repr), err)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			k := fmt.Appendf(nil, "k/%d/%06d", n, i)
			v, closer, err := dst.pb.Get(k)
			if err != nil {
				t.Fatalf("key %s after the batch of %d: %v", k, n, err)
			}
			if string(v) != string(k)+"-value-value-value" {
				t.Fatalf("key %s = %q", k, v)
			}
			closer.Close()
		}
	}
}

// applyOrPanic is db.ApplyBatch with a panic returned as an error.
func applyOrPanic(db *DB, repr []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return db.ApplyBatch(repr)
}
