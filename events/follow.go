package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// pullMax is how many messages the ordered consumer keeps buffered (JETSTREAM.md: 2000
	// gives ~487k msgs/s on a whole-stream replay).
	pullMax = 2000
	// groupMax caps the slice handed to fn; the channel holds as many.
	groupMax = 4096
	// cleanupWait bounds the deletion of the consumer when a follow ends.
	cleanupWait = 2 * time.Second
)

// delivered is one decoded message, or the error that decoding it gave. pending is how many
// messages the consumer still had to deliver after it.
type delivered struct {
	msg     Message
	pending uint64
	err     error
}

// Follow delivers messages with sequence >= from, in order, in batches, to fn until ctx ends or
// fn fails. Live: it keeps waiting for new messages. A slice holds up to 4096 messages: full
// while catching up (the consumer says how many are pending), what has arrived when live. fn must not keep the slice. It
// returns fn's error, an error wrapping ErrInvalid for a message that cannot be decoded, one
// wrapping ErrUnavailable when the connection closes, or ctx.Err().
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

// follow runs an ordered consumer from from. Its callback decodes messages into a channel;
// this goroutine groups what the channel holds and calls fn, so decoding and fn overlap. With
// to > 0 it stops after the message with sequence to.
func (s *Store) follow(ctx context.Context, from, to uint64, fn func([]Message) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := s.js.OrderedConsumer(ctx, s.name, cfg)
	if err != nil {
		return fmt.Errorf("events: follow from %d: %w", from, mapErr(err))
	}
	runCtx, cancel := context.WithCancel(ctx)
	ch := make(chan delivered, groupMax)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d := decodeConsumed(m)
		select {
		case ch <- d:
		case <-runCtx.Done():
		}
	}, jetstream.PullMaxMessages(pullMax))
	if err != nil {
		cancel()
		return fmt.Errorf("events: follow from %d: %w", from, mapErr(err))
	}
	closed := cc.Closed() // once: each call starts a goroutine
	defer func() {
		cancel() // unblocks the callback
		cc.Stop()
		<-closed
		s.deleteConsumer(cons)
	}()
	batch := make([]Message, 0, groupMax)
	for {
		var first delivered
		select {
		case first = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return fmt.Errorf("events: follow from %d: %w: consumer closed", from, ErrUnavailable)
		}
		batch = append(batch[:0], first.msg)
		err, pending := first.err, first.pending
		// Fill the slice while the consumer says more is pending, then take what has arrived.
	fill:
		for err == nil && len(batch) < groupMax && (to == 0 || batch[len(batch)-1].Seq < to) {
			var d delivered
			if pending > 0 {
				select {
				case d = <-ch:
				case <-ctx.Done():
					return ctx.Err()
				case <-closed:
					return fmt.Errorf("events: follow from %d: %w: consumer closed", from, ErrUnavailable)
				}
			} else {
				select {
				case d = <-ch:
				default:
					break fill
				}
			}
			batch, err, pending = append(batch, d.msg), d.err, d.pending
		}
		if err != nil {
			return fmt.Errorf("events: follow from %d: %w", from, err)
		}
		done := false
		if to > 0 && batch[len(batch)-1].Seq >= to {
			for len(batch) > 0 && batch[len(batch)-1].Seq > to {
				batch = batch[:len(batch)-1]
			}
			done = true
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// decodeConsumed decodes a message delivered by the consumer.
func decodeConsumed(m jetstream.Msg) delivered {
	meta, err := m.Metadata()
	if err != nil {
		return delivered{err: fmt.Errorf("%w: message metadata: %v", ErrInvalid, err)}
	}
	msg, err := decodeMessage(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Data())
	return delivered{msg: msg, pending: meta.NumPending, err: err}
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
