//go:build !unix

package main

// lockProgress is a no-op where flock is not available: concurrent imports must not share a
// progress file there.
func lockProgress(string) (func(), error) { return func() {}, nil }
