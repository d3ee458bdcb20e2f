package projections

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// blankRoleHolders rewrites every role holder entry of db without its value, as a model written
// before the values existed holds them; it answers how many.
func blankRoleHolders(t *testing.T, db *DB) int {
	t.Helper()
	it, err := db.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := db.pb.NewBatch()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		parts := splitKey(it.Key())
		if len(parts) == 4 && parts[1] == string(tagRole) {
			if len(it.Value()) == 0 {
				t.Fatalf("role holder entry %q without a value", it.Key())
			}
			if err := b.Set(it.Key(), nil, nil); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(holdersKey, nil); err != nil { // nor did an older release write this
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return n
}

// projectedHistory is a random history of steps commands in tenants acme and beta, and a model
// of it applied in batches of 300.
func projectedHistory(t *testing.T, seed uint64, steps int) ([]events.Message, *DB) {
	t.Helper()
	g := newGenerator(seed, "acme", "beta")
	for range steps {
		g.step()
	}
	msgs := messages(g.items)
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs, 300)
	return msgs, db
}

// splitKey cuts a key into its components.
func splitKey(k []byte) []string {
	var out []string
	start := 0
	for i, c := range k {
		if c == sep {
			out = append(out, string(k[start:i]))
			start = i + 1
		}
	}
	return out
}

// TestRoleHoldersMigrated: a model whose role holder entries have no value (written before
// they carried one) is, once a projector opened it, the model one pass writes today, byte for
// byte; the next start finds nothing to migrate.
func TestRoleHoldersMigrated(t *testing.T) {
	msgs, db := projectedHistory(t, 21, 2000)
	want := onePass(t, msgs)
	if n := blankRoleHolders(t, db); n < 50 {
		t.Fatalf("only %d role holder entries: the history is too small", n)
	}
	if _, err := NewProjector(db, nil); err != nil {
		t.Fatal(err)
	}
	sameContents(t, want, db)
	if n, err := migrateRoleHolders(db.pb); err != nil || n != 0 {
		t.Fatalf("a second migration rewrote %d tenants (%v), want none", n, err)
	}
}

// TestAllHoldersFromIndexValues: the changes the feed derives from the role holder entries'
// values (allHolders decides most holders without reading them) equal those it derives by
// reading every holder, as it does for entries without a value (replay's older checkpoints),
// message after message of a random history: registrations, removals, role and level changes,
// denials and direct grants.
func TestAllHoldersFromIndexValues(t *testing.T) {
	g := newGenerator(23, "acme", "beta")
	for range 3000 {
		g.step()
	}
	msgs := messages(g.items)
	const start = 1500
	models := make([]*Projector, 2)
	engines := make([]*Engine, 2)
	for i := range models {
		db := openDB(t)
		p, err := NewProjector(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		applyAll(t, p, msgs[:start], 500)
		models[i], engines[i] = p, NewEngine(db, p, EngineOptions{})
	}
	blankRoleHolders(t, engines[1].db)
	compared, nonEmpty := 0, 0
	for _, m := range msgs[start:] {
		evs, _, err := decodeBatch([]events.Message{m}, m.Seq-1, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got [2][]aggregates.Change
		for i, e := range engines {
			if got[i], err = e.changesOf(e.db.pb.NewSnapshot(), m.Seq, evs, nil, nil); err != nil {
				t.Fatalf("message %d: %v", m.Seq, err)
			}
			if err := models[i].ApplyMessages([]events.Message{m}); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got[0], got[1]) {
			t.Fatalf("message %d (%s): from the index values\n%+v\nreading every holder\n%+v", m.Seq, m.Events[0].Type, got[0], got[1])
		}
		compared++
		if len(got[0]) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < compared/4 {
		t.Fatalf("only %d of %d messages changed anyone's access", nonEmpty, compared)
	}
}

// TestRoleHoldersAfterRollback: an older release writing the model after the migration (a
// rollback) changes principals' levels without their role holder entries' values, which it
// leaves as they were: at the next start the values are rewritten from the principals,
// though none is empty. Without the holders sequence, the stale values stayed, and the change
// feed and dry runs decided holders from them.
func TestRoleHoldersAfterRollback(t *testing.T) {
	msgs, db := projectedHistory(t, 21, 1500)
	want := onePass(t, msgs)
	// The older release's batch: a value made stale, the applied sequence advanced, the holders
	// sequence not written (it does not know the key).
	it, err := db.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var stale []byte
	for ok := it.First(); ok && stale == nil; ok = it.Next() {
		if parts := splitKey(it.Key()); len(parts) == 4 && parts[1] == string(tagRole) {
			stale = slices.Clone(it.Key())
		}
	}
	if err := it.Close(); err != nil || stale == nil {
		t.Fatalf("no role holder entry (%v)", err)
	}
	applied, err := db.Applied()
	if err != nil {
		t.Fatal(err)
	}
	b := db.pb.NewBatch()
	if err := b.Set(stale, []byte("stale value"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(appliedKey, binary.BigEndian.AppendUint64(nil, applied+1), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := NewProjector(db, nil); err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.pb.Get(stale)
	if err != nil {
		t.Fatal(err)
	}
	got := string(v)
	closer.Close()
	wv, wcloser, err := want.pb.Get(stale)
	if err != nil {
		t.Fatal(err)
	}
	defer wcloser.Close()
	if got != string(wv) {
		t.Fatalf("after the rollback and a restart %q = %q, want %q", stale, got, wv)
	}
	if n, err := migrateRoleHolders(db.pb); err != nil || n != 0 {
		t.Fatalf("a second start rewrote %d tenants (%v), want none", n, err)
	}
}
