package main

import (
	"context"
	"slices"
	"sync"
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
	// A trickle of queries above dropAllocBytes a tick: idle for the trims, never quiet enough
	// to drop the caches it reads.
	var trims, drops int
	for i := 1; i <= 40; i++ {
		allocs += 16 * mb
		trim, drop := tr.tick(allocs)
		if trim {
			trims++
		}
		if drop {
			drops++
		}
	}
	if trims == 0 || drops != 0 {
		t.Fatalf("a trickle of 16 MB a tick: %d trims, %d drops; want trims and no drop", trims, drops)
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

// TestDropCachesDuringClose: the idle drop (on the trimmer's goroutine) may run while SIGTERM
// closes acld; it must not touch the stores close is freeing (under -race: a race on m.blocks,
// or a nil dereference once close has cleared it), and none may start after.
func TestDropCachesDuringClose(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			m.dropCaches()
		}
	}()
	time.Sleep(50 * time.Millisecond) // a few drops before the close
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.dropCaches() // after the close: nothing to drop, no panic
	close(stop)
	wg.Wait()
}
