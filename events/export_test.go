package events

import "testing"

// SetFanQueueMax sets how many messages a fanout's follower may have queued, for t.
func SetFanQueueMax(t testing.TB, n int) {
	old := fanQueueMax
	fanQueueMax = n
	t.Cleanup(func() { fanQueueMax = old })
}
