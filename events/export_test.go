package events

import "testing"

// SetFanQueueMax sets how many messages a fanout's follower may have queued, for t.
func SetFanQueueMax(t testing.TB, n int) {
	old := fanQueueMax
	fanQueueMax = n
	t.Cleanup(func() { fanQueueMax = old })
}

// FanoutStats: the tails f started and the followers it dropped for falling behind.
func FanoutStats(f *Fanout) (tails, drops int64) { return f.tails.Load(), f.drops.Load() }
