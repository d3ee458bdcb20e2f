package replay

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// The batch side of the audit writer: writing states and entries at flush, the keys of holders
// and reverse links with their overlay, and loading states through the cache.

// flush writes the touched states that changed, the log entries and the applied sequence, in
// key order: the memtable inserts a batch's keys in batch order, and each sorted key lands next
// to the one before (a skiplist search from the previous position instead of from the top).
//
// A state is written only when it is new or its cache form differs from the one it was loaded
// with: a third of the states a batch of the commands workload touches are only read (the
// tenant's, a record linking to one whose assignees changed), and writing them again cost the
// batch's commit a memtable insert each, and the cache an entry. The index holds the same bytes
// either way: the value written again was the one the key held.
func (w *auditWriter) flush(applied uint64) error {
	keys := make([]string, 0, len(w.touched)+len(w.entries))
	for k := range w.touched {
		keys = append(keys, k)
	}
	for k := range w.entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if e, ok := w.entries[k]; ok {
			if err := w.setJSON(k, e); err != nil {
				return err
			}
			continue
		}
		v := w.touched[k]
		start := len(w.puts)
		w.puts = encodeCached(w.puts, v)
		p, had := w.prior[k]
		if had && p.enc == string(w.puts[start:]) {
			if p.cached {
				w.puts = w.puts[:start] // nothing to write, nor to cache
				continue
			}
			w.put = append(w.put, pendingPut{k: k, start: start, end: len(w.puts)}) // not written
			continue
		}
		if err := w.setJSON(k, v); err != nil {
			return err
		}
		w.put = append(w.put, pendingPut{k: k, start: start, end: len(w.puts)})
	}
	var seq [8]byte
	putSeq(seq[:], applied)
	if err := w.b.Set(auditAppliedKey, seq[:], nil); err != nil {
		return fmt.Errorf("replay: write audit applied sequence: %w", err)
	}
	return nil
}

// committed hands the batch's new and changed states, and those it read from Pebble, to the
// cache, and their keys to the filter.
func (w *auditWriter) committed() {
	for _, p := range w.put {
		w.cache.putEncoded(p.k, w.puts[p.start:p.end])
		w.states.add([]byte(p.k))
	}
}

func (w *auditWriter) setJSON(k string, v any) error {
	raw, err := encodeValue(w.enc, v)
	if err != nil {
		return fmt.Errorf("replay: encode audit key %q: %w", k, err)
	}
	if err := w.b.Set([]byte(k), raw, nil); err != nil { // Set copies key and value
		return fmt.Errorf("replay: write audit key %q: %w", k, err)
	}
	w.enc = raw[:0]
	return nil
}

// set writes k, a key under prefix, and notes it for scans of the batch.
func (w *auditWriter) set(prefix, k []byte) error {
	w.overlay(prefix, k, true)
	if err := w.b.Set(k, nil, nil); err != nil {
		return fmt.Errorf("replay: write audit key %q: %w", k, err)
	}
	return nil
}

// del deletes k, a key under prefix, and notes it for scans of the batch.
func (w *auditWriter) del(prefix, k []byte) error {
	w.overlay(prefix, k, false)
	if err := w.b.Delete(k, nil); err != nil {
		return fmt.Errorf("replay: delete audit key %q: %w", k, err)
	}
	return nil
}

// overlay records that k, a key under prefix, is set or deleted in the batch.
func (w *auditWriter) overlay(prefix, k []byte, set bool) {
	if _, seen := w.keys[string(k)]; !seen {
		w.under[string(prefix)] = append(w.under[string(prefix)], string(k))
	}
	w.keys[string(k)] = set
}

// scan calls fn with every key under prefix as the batch sees them: the committed keys, less
// those deleted in the batch, plus those set in it, in key order.
func (w *auditWriter) scan(prefix []byte, fn func(k []byte) error) error {
	it, err := w.pb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("replay: scan %q: %w", prefix, err)
	}
	var found []string
	for ok := it.First(); ok; ok = it.Next() {
		if set, ok := w.keys[string(it.Key())]; !ok || set {
			found = append(found, string(it.Key()))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("replay: scan %q: %w", prefix, err)
	}
	committed := len(found) // sorted: the iterator's order
	for _, k := range w.under[string(prefix)] {
		if _, in := slices.BinarySearch(found[:committed], k); w.keys[k] && !in {
			found = append(found, k)
		}
	}
	slices.Sort(found)
	for _, k := range found {
		if err := fn([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

func (w *auditWriter) tenant(id string) (*tenantState, error) {
	return loadState[tenantState](w, tenantStateKey(id), "tenant "+id)
}

func (w *auditWriter) principal(tenant, id string) (*principalState, error) {
	return loadState[principalState](w, principalStateKey(tenant, id), "principal "+id)
}

func (w *auditWriter) record(tenant, typ, id string) (*recordState, error) {
	return loadState[recordState](w, recordStateKey(tenant, typ, id), "record "+typ+"/"+id)
}

// loadState returns the state under k: as the batch left it, else from the cache of committed
// states, else a new zero state when the filter says the index has none, else from Pebble. It is
// marked touched: written at flush if it changed. Its cache form as loaded is kept in prior
// (flush compares).
func loadState[T any](w *auditWriter, k []byte, what string) (*T, error) {
	if s, ok := w.touched[string(k)].(*T); ok {
		return s, nil
	}
	s := new(T)
	if v, ok := w.cache.lookup(string(k)); ok && decodeCached(v, s) {
		w.prior[string(k)] = priorState{enc: v, cached: true}
	} else if !w.states.absent(k) {
		*s = *new(T) // what a malformed cache entry (a bug) may have set
		w.reads++
		v, closer, err := w.pb.Get(k)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("replay: read %s: %w", what, err)
		default:
			s, err = decodeJSON[T](v, what)
			closer.Close()
			if err != nil {
				return nil, err
			}
			w.prior[string(k)] = priorState{enc: string(encodeCached(nil, s))}
		}
	}
	w.touched[string(k)] = s
	return s, nil
}
