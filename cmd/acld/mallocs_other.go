//go:build !linux || !cgo

package main

// trimCHeap: without cgo Pebble allocates in Go's heap, which debug.FreeOSMemory returns.
func trimCHeap() bool { return false }
