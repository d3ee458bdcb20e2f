//go:build linux && cgo

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
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
	if os.Getenv("ACL_TEST_ARENAS") != "" { // the child of TestCArenaLimitOfTheOperator
		fmt.Printf("arenas=%d\n", arenasOfThreads(8))
		return
	}
	if n := arenasOfThreads(8); n != cArenas {
		t.Fatalf("the C heap has %d arenas, want %d", n, cArenas)
	}
}

// TestCArenaLimitOfTheOperator: with MALLOC_ARENA_MAX set, acld leaves glibc's arenas to it (a
// child process, since the limit is set before the runtime starts).
func TestCArenaLimitOfTheOperator(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestOneCArena$")
	cmd.Env = append(os.Environ(), "ACL_TEST_ARENAS=1", "MALLOC_ARENA_MAX=4")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, count, found := strings.Cut(string(out), "arenas=")
	var n int
	if _, err := fmt.Sscanf(count, "%d", &n); !found || err != nil {
		t.Fatalf("no arena count in %q", out)
	}
	if n <= cArenas || n > 4 {
		t.Fatalf("with MALLOC_ARENA_MAX=4 the C heap has %d arenas, want 2 to 4 (the operator's limit, not acld's %d)", n, cArenas)
	}
}

// arenasOfThreads allocates from n threads at once and counts the C heap's arenas.
func arenasOfThreads(threads int) int {
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
	return n
}
