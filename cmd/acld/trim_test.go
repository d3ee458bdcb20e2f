package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestIdleTrim(t *testing.T) {
	const mb = 1 << 20
	steps := []struct {
		allocs uint64 // cumulative
		want   bool
	}{
		{0, true}, // idle from the start: first collection
		{1 * mb, true},
		{2 * mb, true},
		{3 * mb, true},
		{4 * mb, true},
		{5 * mb, true},    // the sixth
		{6 * mb, false},   // done for this idle period
		{7 * mb, false},   // and stays done
		{100 * mb, false}, // busy: 93 MB in a tick
		{101 * mb, true},  // idle again: a new period starts
		{102 * mb, true},
		{200 * mb, false}, // busy in the middle of a period resets it
		{201 * mb, true},
	}
	var tr idleTrim
	for i, s := range steps {
		if got, _ := tr.tick(s.allocs); got != s.want {
			t.Fatalf("step %d (allocs %d MB): trim = %v, want %v", i, s.allocs/mb, got, s.want)
		}
	}
}

// TestIdleTrimLate: one more trim once an idle period has lasted lateTrim (what nats-server
// drops after 2 minutes), and only once; a busy tick starts the count again.
func TestIdleTrimLate(t *testing.T) {
	const mb = 1 << 20
	tr := newIdleTrim(30*time.Second, 0) // 150 s: the fifth tick, among the first six
	if tr.late != 5 {
		t.Fatalf("late = %d ticks, want 5", tr.late)
	}
	tr = newIdleTrim(10*time.Second, 0)
	if tr.late != 15 {
		t.Fatalf("late = %d ticks, want 15", tr.late)
	}
	var allocs uint64
	for period := 0; period < 2; period++ {
		var got []int
		for i := 1; i <= 30; i++ {
			allocs += mb
			if trim, _ := tr.tick(allocs); trim {
				got = append(got, i)
			}
		}
		if want := []int{1, 2, 3, 4, 5, 6, 15}; !slices.Equal(got, want) {
			t.Fatalf("period %d: trims at idle ticks %v, want %v", period, got, want)
		}
		allocs += 100 * mb // busy
		if trim, _ := tr.tick(allocs); trim {
			t.Fatal("trimmed on a busy tick")
		}
	}
}

// TestIdleDropCaches: once an idle period has lasted dropCaches, acld drops its caches of states
// and trims, once a period, and after the six trims (at a 5 s tick) the drop is a trim of its
// own; a busy tick starts the count again.
func TestIdleDropCaches(t *testing.T) {
	const mb = 1 << 20
	tr := newIdleTrim(5*time.Second, 0) // 60 s: the 12th tick
	var allocs uint64
	for period := 0; period < 2; period++ {
		var trims, drops []int
		for i := 1; i <= 40; i++ {
			allocs += mb
			trim, drop := tr.tick(allocs)
			if trim {
				trims = append(trims, i)
			}
			if drop {
				drops = append(drops, i)
			}
		}
		if want := []int{12}; !slices.Equal(drops, want) {
			t.Fatalf("period %d: drops at idle ticks %v, want %v", period, drops, want)
		}
		if want := []int{1, 2, 3, 4, 5, 6, 12, 30}; !slices.Equal(trims, want) {
			t.Fatalf("period %d: trims at idle ticks %v, want %v", period, trims, want)
		}
		allocs += 100 * mb // busy
		if trim, drop := tr.tick(allocs); trim || drop {
			t.Fatal("trimmed or dropped on a busy tick")
		}
	}
}

// TestDropCachesEmptiesBlockCache: an idle acld's drop empties the Pebble block cache (and the
// caches of states), and the answers after it are those before.
func TestDropCachesEmptiesBlockCache(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	q := `{"principal":"ann","permission":"case.view","min_seq":` + itoa(lastSeq(t, m)) + `}`
	if status, a := postJSON(t, base+"/v1/tenants/demo/check", q); status != 200 {
		t.Fatalf("check %d %v", status, a)
	}
	if err := m.db.Compact(context.Background()); err != nil { // the model in tables, so reads go through blocks
		t.Fatal(err)
	}
	m.engine.DropCache()
	status, before := postJSON(t, base+"/v1/tenants/demo/check", q)
	if status != 200 || m.blocks.Size() == 0 {
		t.Fatalf("check %d %v; block cache %d bytes: want blocks read", status, before, m.blocks.Size())
	}
	m.dropCaches()
	if n := m.blocks.Size(); n != 0 {
		t.Fatalf("block cache holds %d bytes after the drop", n)
	}
	status, after := postJSON(t, base+"/v1/tenants/demo/check", q)
	if status != 200 || after["allowed"] != before["allowed"] || after["seq"] != before["seq"] {
		t.Fatalf("after the drop: %d %v, before %v", status, after, before)
	}
}
