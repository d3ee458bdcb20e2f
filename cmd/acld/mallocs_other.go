//go:build !linux || !cgo

package main

// trimCHeap: without cgo Pebble allocates in Go's heap, which debug.FreeOSMemory returns.
func trimCHeap() bool { return false }

// cHeap: no C heap to tell of.
func cHeap() (used, free uint64, ok bool) { return 0, 0, false }
