package events

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SetFanQueueMax sets how many messages a fanout's follower may have queued, for t.
func SetFanQueueMax(t testing.TB, n int) {
	old := fanQueueMax
	fanQueueMax = n
	t.Cleanup(func() { fanQueueMax = old })
}

// SetConsumerWaits sets how long a follow waits for its consumer's creation (createWait) and
// how long the creation goes on when nobody waits for it any more (lateWait), for t.
func SetConsumerWaits(t testing.TB, create, late time.Duration) {
	oldCreate, oldLate := createWait, lateWait
	createWait, lateWait = create, late
	t.Cleanup(func() { createWait, lateWait = oldCreate, oldLate })
}

// OpenStoreWithAPIPrefix is OpenStore with the store's JetStream API requests sent to prefix
// instead of $JS.API, for a test that stands between the store and the server.
func OpenStoreWithAPIPrefix(ctx context.Context, nc *nats.Conn, cfg StoreConfig, prefix string) (*Store, error) {
	js, err := jetstream.NewWithAPIPrefix(nc, prefix)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, nc, js, cfg)
}

// NewerFromLeader is Store.Newer as it asks a replicated stream's leader.
func NewerFromLeader(ctx context.Context, s *Store, subject string, after uint64) (bool, error) {
	return s.newerFromLeader(ctx, subject, after)
}
