package projections

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// writes collects a batch's sets and deletes and hands them to Pebble sorted by key: the
// memtable inserts a sorted batch with the skiplist's splice hint, several times faster than
// in arrival order. Keys and values live in one reused arena.
type writes struct {
	arena  []byte
	ops    []write
	sorted []sortKey
}

type write struct {
	k, v [2]int32 // offset and length in the arena
	del  bool
}

func (w *writes) reset() {
	w.arena = w.arena[:0]
	w.ops = w.ops[:0]
}

// addWrite records a set of k to v, or a delete of k.
func addWrite[K, V []byte | string](w *writes, k K, v V, del bool) {
	ko := int32(len(w.arena))
	w.arena = append(w.arena, k...)
	vo := int32(len(w.arena))
	w.arena = append(w.arena, v...)
	w.ops = append(w.ops, write{k: [2]int32{ko, int32(len(k))}, v: [2]int32{vo, int32(len(v))}, del: del})
}

// addEncoded records a set of k to the bytes enc appends to the arena (no copy of its own).
func (w *writes) addEncoded(k string, enc func(dst []byte) []byte) {
	ko := int32(len(w.arena))
	w.arena = append(w.arena, k...)
	vo := int32(len(w.arena))
	w.arena = enc(w.arena)
	w.ops = append(w.ops, write{k: [2]int32{ko, int32(len(k))}, v: [2]int32{vo, int32(len(w.arena)) - vo}})
}

func (w *writes) bytes(r [2]int32) []byte { return w.arena[r[0] : r[0]+r[1]] }

// sortMin is the number of writes from which sorting pays: a live batch of a few keys goes in
// as it came (Pebble keeps the last write of a key either way).
const sortMin = 256

// into writes the collected operations to b, in key order when there are many, only the last
// of each key.
func (w *writes) into(b *pebble.Batch) error {
	if len(w.ops) < sortMin {
		for _, op := range w.ops {
			if err := w.put(b, op); err != nil {
				return err
			}
		}
		return nil
	}
	// Sort views of the keys (strings over the arena, which no longer changes): comparing
	// strings is cheaper than slicing the arena in every comparison.
	w.sorted = w.sorted[:0]
	for i, op := range w.ops {
		w.sorted = append(w.sorted, sortKey{k: unsafe.String(&w.arena[op.k[0]], op.k[1]), i: int32(i)})
	}
	slices.SortFunc(w.sorted, func(x, y sortKey) int {
		if c := strings.Compare(x.k, y.k); c != 0 {
			return c
		}
		return int(x.i - y.i) // arrival order: the last write of a key wins
	})
	for j, sk := range w.sorted {
		if j+1 < len(w.sorted) && w.sorted[j+1].k == sk.k {
			continue // a later write of the same key follows
		}
		if err := w.put(b, w.ops[sk.i]); err != nil {
			return err
		}
	}
	clear(w.sorted) // drop the views before the arena is reused
	return nil
}

type sortKey struct {
	k string
	i int32
}

func (w *writes) put(b *pebble.Batch, op write) error {
	var err error
	if op.del {
		err = b.Delete(w.bytes(op.k), nil)
	} else {
		err = b.Set(w.bytes(op.k), w.bytes(op.v), nil)
	}
	if err != nil {
		return fmt.Errorf("projections: batch write: %w", err)
	}
	return nil
}
