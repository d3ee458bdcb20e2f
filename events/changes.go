package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The change feed's subjects (SPEC section 8). Subscribers listen on ChangesPrefix
// (acl.changes.<tenant>.principal.<id>), core NATS, no JetStream needed. Every acld instance
// derives the same changes; each publishes them into the stream ChangesStream on
// changesInput (acl.feed.<tenant>.principal.<id>) with a message id naming the change, the
// stream stores each id once (within ChangesDuplicateWindow) and republishes what it stored
// on ChangesPrefix: so a subscriber receives each change once, however many instances run.
// Nothing but the stream publishes on ChangesPrefix (callers may only subscribe to it).
const (
	ChangesPrefix          = "acl.changes"
	changesInput           = "acl.feed"
	ChangesStream          = "ACL_CHANGES"
	ChangesDuplicateWindow = 2 * time.Minute
	// changesMaxAge and changesMaxBytes bound what the stream keeps: it serves de-duplication,
	// not history (the event stream is the history; diff answers what a subscriber missed).
	// nats-server keeps the message ids of the duplicate window apart from the messages
	// (stream.go, ddmap), so dropping stored changes early does not weaken de-duplication. The
	// stream is in memory, in acld's heap when embedded: without a size bound, a burst of
	// commands (an import: 1,001 changes per record registered at the compare shape) held
	// 69 MB of changes there for ten minutes; bounded at 16 MiB, 18 MB of heap for two minutes
	// after an import. 2 MiB is still twice NATS's default largest message (1 MiB), so any
	// change message fits.
	changesMaxAge   = ChangesDuplicateWindow
	changesMaxBytes = 2 << 20
)

// ChangesSubject is the subject of principal's changes in tenant.
func ChangesSubject(tenant, principal string) string {
	return ChangesPrefix + "." + tenant + ".principal." + principal
}

// Changes publishes the change feed through the stream ChangesStream. Safe for concurrent use.
type Changes struct {
	js jetstream.JetStream

	mu      sync.Mutex
	pending []jetstream.PubAckFuture
}

// OpenChanges creates (or updates) the changes stream with replicas (0: 1) and returns its
// publisher.
func OpenChanges(ctx context.Context, nc *nats.Conn, replicas int) (*Changes, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("events: jetstream context: %w", err)
	}
	if replicas == 0 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:       ChangesStream,
		Subjects:   []string{changesInput + ".>"},
		Storage:    jetstream.MemoryStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     changesMaxAge,
		MaxBytes:   changesMaxBytes,
		Duplicates: ChangesDuplicateWindow,
		Replicas:   replicas,
		RePublish:  &jetstream.RePublish{Source: changesInput + ".>", Destination: ChangesPrefix + ".>"},
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("events: open stream %s: %w", ChangesStream, mapErr(err))
	}
	return &Changes{js: js}, nil
}

// Publish sends one message of tenant's feed, on ChangesPrefix.<tenant>.<tail> once stored
// (tail: "principal.<id>" for a change, "gap"); msgID names the message (the same on every
// instance). It does not wait for the stream's acknowledgement: Flush does.
func (c *Changes) Publish(ctx context.Context, tenant, tail, msgID string, body []byte) error {
	m := nats.NewMsg(changesInput + "." + tenant + "." + tail)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	f, err := c.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("events: publish change: %w", mapErr(err))
	}
	c.mu.Lock()
	c.pending = append(c.pending, f)
	c.mu.Unlock()
	return nil
}

// Flush waits for the acknowledgement of every change published so far.
func (c *Changes) Flush(ctx context.Context) error {
	c.mu.Lock()
	fs := c.pending
	c.pending = nil
	c.mu.Unlock()
	var errs []error
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("events: publish change: %w", err)
	}
	return nil
}
