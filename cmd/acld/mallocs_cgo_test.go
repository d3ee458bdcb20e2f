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
