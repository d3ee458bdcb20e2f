package projections

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkWritesInto sorts the writes of one catch-up batch (4096 messages of the benchmark
// history: record registrations) into a Pebble batch.
func BenchmarkWritesInto(b *testing.B) {
	msgs := benchHistory(b, 20_000)
	db, err := OpenDB(b.TempDir(), DBOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := NewProjector(db, nil)
	if err != nil {
		b.Fatal(err)
	}
	const from, n = 8192, 4096
	if err := p.ApplyMessages(msgs[:from]); err != nil {
		b.Fatal(err)
	}
	var ws writes
	w := newWriter(db.pb, &ws, p.states, &p.handoff)
	w.reset(db.pb.NewBatch())
	evs, last, err := decodeBatch(msgs[from:from+n], p.Applied(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, de := range evs {
		if err := w.apply(de.e, de.d, de.from); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.flush(last); err != nil {
		b.Fatal(err)
	}
	batch := db.pb.NewBatch(pebble.WithMaxRetainedSizeBytes(maxRetainedBatch))
	b.ResetTimer()
	for b.Loop() {
		batch.Reset()
		if err := ws.into(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ws.ops)), "writes")
}

// TestWritesIntoOrder: the writes reach the batch in key order, only the last of each key.
func TestWritesIntoOrder(t *testing.T) {
	var ws writes
	keys := []string{"t\x00a\x00x\x00", "t\x00a\x00", "t\x00a\x00\x00", "t\x00a", "!applied", "t\x00a\x00x\x00",
		"t\x00b\x00yyyyyyyyyyyy\x00", "t\x00b\x00yyyyyyyyyyyy\x00", "t\x00b\x00yyyyyyyyyyy\x00", "u", "t\x00a\x00\x01"}
	for i := 0; i < sortMin; i++ {
		k := keys[i%len(keys)]
		addWrite(&ws, k, string(rune('a'+i%26)), i%7 == 3)
	}
	db, err := OpenDB(t.TempDir(), DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.pb.NewBatch()
	if err := ws.into(b); err != nil {
		t.Fatal(err)
	}
	// The last write of each key, in key order.
	last := map[string]write{}
	for _, op := range ws.ops {
		last[string(ws.bytes(op.k))] = op
	}
	r := b.Reader()
	var prev []byte
	n := 0
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n++
		if prev != nil && string(prev) >= string(k) {
			t.Fatalf("key %q after %q", k, prev)
		}
		prev = append(prev[:0], k...)
		want := last[string(k)]
		if want.del != (kind == pebble.InternalKeyKindDelete) || (!want.del && string(v) != string(ws.bytes(want.v))) {
			t.Fatalf("key %q: kind %v value %q; want the last write %+v", k, kind, v, want)
		}
	}
	if n != len(last) {
		t.Fatalf("%d keys in the batch; want %d", n, len(last))
	}
}
