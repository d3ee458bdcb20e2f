package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// writes collects a batch's sets and deletes and hands them to Pebble sorted by key: the
// memtable inserts a sorted batch with the skiplist's splice hint, several times faster than
// in arrival order. Keys and values live in one reused arena.
type writes struct {
	arena []byte
	ops   []write
}

type write struct {
	k, v  [2]int32 // offset and length in the arena
	del   bool
	order int32 // arrival order: the last write of a key wins
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
	w.ops = append(w.ops, write{k: [2]int32{ko, int32(len(k))}, v: [2]int32{vo, int32(len(v))},
		del: del, order: int32(len(w.ops))})
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
	slices.SortFunc(w.ops, func(x, y write) int {
		if c := bytes.Compare(w.bytes(x.k), w.bytes(y.k)); c != 0 {
			return c
		}
		return int(x.order - y.order)
	})
	for i, op := range w.ops {
		if i+1 < len(w.ops) && bytes.Equal(w.bytes(op.k), w.bytes(w.ops[i+1].k)) {
			continue // a later write of the same key follows
		}
		if err := w.put(b, op); err != nil {
			return err
		}
	}
	return nil
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
