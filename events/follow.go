package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// pullMax is how many messages the ordered consumer keeps buffered. A bare ordered consumer
	// replaying 200k messages here did ~281k msgs/s at 500, ~343k at 2000, ~397k at 10000
	// (one run each, 2 shared cores); 10000 messages of ~400 bytes is ~4 MB per follower.
	pullMax = 10000
	// cleanupWait bounds the deletion of the consumer when a follow ends.
	cleanupWait = 2 * time.Second
	// createWait bounds the creation of a follow's consumer, whatever the follow's context.
	createWait = 10 * time.Second
	// followHeartbeat is how often the server says an idle consumer is alive. The ordered
	// consumer is recreated after two missed ones: with nats.go's default of 5 s, a follower
	// whose consumer lived on a cluster node that stopped resumed ~10 s later, and a read
	// model stalled that long after a stream leader's loss (TestClusterLeaderLoss failed 1 of
	// 15 runs: applied 4,200 of 13,858 acknowledged when it asked). A heartbeat message per
	// follower each 2 s costs nothing measurable.
	followHeartbeat = 2 * time.Second
)

// Follow delivers messages with sequence >= from, in order, in batches, to fn until ctx ends or
// fn fails. Live: it keeps waiting for new messages. A slice holds up to 4096 messages: full
// while catching up (the consumer says how many are pending), what has arrived when live. fn
// must not keep the slice. It returns fn's error, an error wrapping ErrInvalid for a message
// that cannot be decoded (after handing over those before it), one wrapping ErrUnavailable
// when the connection closes, or one wrapping ctx.Err().
func (s *Store) Follow(ctx context.Context, from uint64, fn func([]Message) error) error {
	return s.follow(ctx, from, 0, fn)
}

// Read returns the messages with from <= seq <= to (to 0: up to the last), in order, then
// returns. A to past the last sequence at call time reads up to that last sequence: Read never
// waits for messages not yet written.
func (s *Store) Read(ctx context.Context, from, to uint64, fn func([]Message) error) error {
	last, err := s.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("events: read %d..%d: %w", from, to, err)
	}
	if to == 0 || to > last {
		to = last
	}
	if from == 0 {
		from = 1
	}
	if to < from {
		return nil
	}
	return s.follow(ctx, from, to, fn)
}

// follow runs an ordered consumer from from. Its callback decodes messages into chunks sent on
// a channel; this goroutine groups chunks and calls fn, so decoding and fn overlap. With to > 0
// it stops after the message with sequence to.
func (s *Store) follow(ctx context.Context, from, to uint64, fn func([]Message) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := s.orderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("events: follow from %d: %w", from, mapErr(err))
	}
	runCtx, cancel := context.WithCancel(ctx)
	ch := make(chan chunk, chanChunks)
	ck := chunker{ch: ch, done: runCtx.Done(), to: to}
	cc, err := cons.Consume(ck.add, jetstream.PullMaxMessages(pullMax), jetstream.PullHeartbeat(followHeartbeat))
	if err != nil {
		cancel()
		s.deleteConsumer(cons)
		return fmt.Errorf("events: follow from %d: %w", from, mapErr(err))
	}
	closed := cc.Closed() // once: each call starts a goroutine
	defer func() {
		cancel() // unblocks the callback
		cc.Stop()
		<-closed
		s.deleteConsumer(cons)
	}()
	g := grouper{ch: ch, closed: closed, to: to, batch: make([]Message, 0, groupMax)}
	for {
		batch, err := g.next(ctx)
		// Hand over what was good before an error, so a follower stops right at the bad message.
		if len(batch) > 0 {
			if ferr := fn(batch); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return fmt.Errorf("events: follow from %d: %w", from, err)
		}
		if g.reached() {
			return nil
		}
	}
}

// orderedConsumer creates a follow's consumer. The request creating it does not end with ctx:
// cut short on the client it still created the consumer on the server, which nobody deleted
// then (it stayed until its inactive threshold, 5 minutes, with its goroutines in an embedded
// server). When ctx ends first, the creation goes on in the background and its consumer is
// deleted like any other.
func (s *Store) orderedConsumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type made struct {
		cons jetstream.Consumer
		err  error
	}
	done := make(chan made, 1)
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createWait)
		defer cancel()
		cons, err := s.js.OrderedConsumer(cctx, s.name, cfg)
		done <- made{cons, err}
	}()
	select {
	case m := <-done:
		return m.cons, m.err
	case <-ctx.Done():
		go func() {
			if m := <-done; m.err == nil {
				s.deleteConsumer(m.cons)
			}
		}()
		return nil, ctx.Err()
	}
}

// deleteConsumer removes the ordered consumer at once instead of leaving it to its inactive
// threshold (5 minutes), so that many short reads do not pile up consumers on the server.
func (s *Store) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupWait)
	defer cancel()
	// On failure the server removes it after its inactive threshold anyway.
	_ = s.js.DeleteConsumer(ctx, s.name, info.Name)
}
