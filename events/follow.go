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
	// consumerIdle is how long the server keeps a follow's consumer that nobody pulls from
	// (nats.go's default for ordered consumers, set here because lateWait is bounded by it).
	consumerIdle = 5 * time.Minute
	// followHeartbeat is how often the server says an idle consumer is alive. The ordered
	// consumer is recreated after two missed ones: with nats.go's default of 5 s, a follower
	// whose consumer lived on a cluster node that stopped resumed ~10 s later, and a read
	// model stalled that long after a stream leader's loss (TestClusterLeaderLoss failed 1 of
	// 15 runs: applied 4,200 of 13,858 acknowledged when it asked). A heartbeat message per
	// follower each 2 s costs nothing measurable.
	followHeartbeat = 2 * time.Second
)

// Variables for the tests (SetConsumerWaits).
var (
	// createWait bounds how long a follow waits for its consumer's creation, whatever its
	// context.
	createWait = 10 * time.Second
	// lateWait bounds how long a creation nobody waits for any more goes on in the background,
	// so that its consumer is deleted when the server answers (orderedConsumer); after it, the
	// consumer is deleted by its name. Each waits in a goroutine: a follower retrying through
	// an outage starts one each createWait, so a minute keeps them to six a follower. Under
	// consumerIdle, after which the server has removed what it made anyway.
	lateWait = time.Minute
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

// orderedConsumer creates a follow's consumer, named before it is created (Store.prefix) so
// that it can be deleted whatever becomes of the request creating it. That request does not end
// with ctx: cut short on the client it still created the consumer on the server, which nobody
// deleted then (it stayed until its inactive threshold, 5 minutes, with its goroutines in an
// embedded server). When ctx ends or createWait passes first, the creation goes on in the
// background, up to lateWait, and its consumer is deleted when the server answers. A server
// that answers later than that, or whose answer is lost, may have made the consumer all the
// same: it is deleted by its name then. Only a creation the server carries out after that
// deletion stays until its inactive threshold.
func (s *Store) orderedConsumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.NamePrefix = fmt.Sprintf("%s_%d", s.prefix, s.follows.Add(1))
	cfg.InactiveThreshold = consumerIdle
	// nats.go names an ordered consumer's first consumer <NamePrefix>_1, the next one (after
	// a reset, which deletes the one before itself) _2, and so on.
	name := cfg.NamePrefix + "_1"
	type made struct {
		cons jetstream.Consumer
		err  error
	}
	done := make(chan made, 1)
	wait, late := createWait, lateWait // read here: the tests set them between calls
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), late)
		defer cancel()
		cons, err := s.js.OrderedConsumer(cctx, s.name, cfg)
		done <- made{cons, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case m := <-done:
		// An error here is the server's refusal or a lost connection: nothing to delete, or
		// no way to.
		return m.cons, m.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("consumer %s not created in %v: %w", name, wait, context.DeadlineExceeded)
	}
	go func() {
		if m := <-done; m.err == nil {
			s.deleteConsumer(m.cons)
		} else {
			s.deleteConsumerNamed(name)
		}
	}()
	return nil, err
}

// deleteConsumer removes the ordered consumer at once instead of leaving it to its inactive
// threshold (5 minutes), so that many short reads do not pile up consumers on the server.
func (s *Store) deleteConsumer(cons jetstream.Consumer) {
	if info := cons.CachedInfo(); info != nil {
		s.deleteConsumerNamed(info.Name)
	}
}

// deleteConsumerNamed deletes consumer name of the stream if it exists.
func (s *Store) deleteConsumerNamed(name string) {
	if !s.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupWait)
	defer cancel()
	// On failure the server removes it after its inactive threshold anyway.
	_ = s.js.DeleteConsumer(ctx, s.name, name)
}
