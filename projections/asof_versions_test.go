package projections

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestVersionsAsOfEveryFlush: a model written as replay's chain is (tagged, one table per flush,
// no compactions) and its state versions, added in two parts with a reopening between, answer
// every state the same as of every flush: the version at or below the flush's applied sequence
// is the state its tables hold (found or not). The reopened store resumes after the tables it
// has.
func TestVersionsAsOfEveryFlush(t *testing.T) {
	g := newGenerator(41, "acme", "beta")
	for range 400 {
		g.step()
	}
	msgs := messages(g.items)
	db, err := OpenDB(t.TempDir(), DBOptions{CacheBytes: 8 << 20, MemTableBytes: 4 << 20, TagApplied: true, DisableCompactions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += 40 {
		applyAll(t, p, msgs[i:min(i+40, len(msgs))], 40)
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	f, ok, err := db.Flushes()
	if err != nil || !ok || len(f.applied) < 6 {
		t.Fatalf("flushes: %v %v %d", ok, err, len(f.applied))
	}

	dir := t.TempDir()
	vs, err := OpenVersions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	half := len(f.applied) / 2
	if err := vs.AddTables(db, &Flushes{applied: f.applied[:half], seqNum: f.seqNum[:half], files: f.files[:half]}); err != nil {
		t.Fatal(err)
	}
	if err := vs.Close(); err != nil {
		t.Fatal(err)
	}
	if vs, err = OpenVersions(dir, nil); err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	if got, want := vs.Applied(), f.applied[half-1]; got != want {
		t.Fatalf("reopened at %d, want %d", got, want)
	}
	if err := vs.AddTables(db, f); err != nil {
		t.Fatal(err)
	}
	if got, want := vs.Applied(), f.applied[len(f.applied)-1]; got != want {
		t.Fatalf("versions at %d, want %d", got, want)
	}

	var states [][]byte
	it, err := db.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if isStateKey(it.Key()) {
			states = append(states, bytes.Clone(it.Key()))
		}
	}
	it.Close()
	var vit *pebble.Iterator
	defer func() { vit.Close() }()
	updated, prev := 0, map[string][]byte{}
	for i, floor := range f.applied {
		b := db.pb.NewIndexedBatch()
		tables, err := newTablesUpTo(b, f, floor)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range states {
			want, closer, err := tables.Get(k)
			found := err == nil
			if found {
				want = bytes.Clone(want)
				closer.Close()
			} else if !errors.Is(err, pebble.ErrNotFound) {
				t.Fatal(err)
			}
			got, ok, err := vs.at(&vit, k, floor)
			if err != nil {
				t.Fatal(err)
			}
			if ok != found || !bytes.Equal(got, want) {
				t.Fatalf("state %q as of flush %d (applied %d): versions %v %x, tables %v %x", k, i, floor, ok, got, found, want)
			}
			if old, ok := prev[string(k)]; ok && found && !bytes.Equal(old, want) {
				updated++ // an existing state rewritten: its older version must not be read
			}
			if found {
				prev[string(k)] = want
			}
		}
		tables.close()
		b.Close()
	}
	if updated == 0 {
		t.Fatal("no state was updated between flushes: the history tests nothing")
	}
	t.Logf("%d states, %d flushes, %d updates between flushes", len(states), len(f.applied), updated)
}
