//go:build race

package replay

// raceEnabled: the wide random histories, mostly one goroutine's logic, run shorter under the
// race detector, which slows them several times over (.ci/run runs the suite both ways).
const raceEnabled = true
