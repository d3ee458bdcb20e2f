//go:build race

package main

// raceEnabled: the race detector slows the cluster test's five servers past what two cores
// answer within its bounds; it runs without -race (go test ./...).
const raceEnabled = true
