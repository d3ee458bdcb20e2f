//go:build linux && cgo

package main

import (
	"runtime"
	"sync"
	"testing"
)

// TestTrimCHeapAvailable: on a glibc build the idle trim does reach malloc_trim (a weak
// reference left unresolved would make it silently do nothing, and Pebble's freed blocks stay
// resident: README, Round 10: memory).
func TestTrimCHeapAvailable(t *testing.T) {
	if !trimCHeap() {
		t.Fatal("malloc_trim not found: the C heap is never trimmed (not glibc?)")
	}
}

// TestCHeapTold: the C heap's figures behind acl_c_heap_bytes are read (Pebble's cache and
// memtables are there, so a process that opened none still has the C library's own).
func TestCHeapTold(t *testing.T) {
	used, _, ok := cHeap()
	if !ok || used == 0 {
		t.Fatalf("cHeap() = %d, ok %v: mallinfo2 not found (glibc before 2.33?)", used, ok)
	}
}

// TestOneCArena: allocations made from many threads at once all land in one arena (cArenas),
// so a block freed by one thread serves the next one read by any other. (Without the
// setting, glibc gives each new thread an arena of its own: 12 here.)
func TestOneCArena(t *testing.T) {
	const threads = 8
	var allocated sync.WaitGroup
	hold := make(chan struct{})
	for range threads {
		allocated.Add(1)
		go func() {
			// Locked while they wait: the goroutines are on as many distinct threads.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			allocFree(4096)
			allocated.Done()
			<-hold
		}()
	}
	allocated.Wait()
	n := arenas()
	close(hold)
	if n != cArenas {
		t.Fatalf("the C heap has %d arenas, want %d", n, cArenas)
	}
}
