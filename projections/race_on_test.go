//go:build race

package projections

// raceEnabled: tests of one goroutine's logic that the race detector slows several times
// over skip under it; they run in go test ./... (.ci/run runs both).
const raceEnabled = true
