//go:build linux && cgo

package main

import "testing"

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
