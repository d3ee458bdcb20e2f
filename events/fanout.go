package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Follower is what follows the stream: a *Store (a consumer of its own for each follow), or a
// *Fanout (one consumer shared by the follows that have caught up).
type Follower interface {
	Follow(ctx context.Context, from uint64, fn func([]Message) error) error
}

// Fanout shares one consumer of the stream, and one decoding of each message, among several
// followers (acld's projector, audit index and command state spill). Each consumer of its own
// made nats-server send every message once per follower and the process decode it as often.
//
// Its Follow is Store.Follow's: from its own position, in order, each message once, the
// follower's errors its own. A follower joins the shared consumer (the tail) where the tail is;
// one behind it reads the messages up to there through a consumer of its own (Store.Read),
// then joins; one ahead of it is handed only the messages from its position on. The tail
// queues each follower's messages; a follower that falls more than fanQueueMax messages
// behind is dropped from the tail, finishes its queue, and catches up alone again, so a slow
// follower does not hold back the others. The tail starts with the first follower that needs
// it, at that follower's position, and stops when no follower is left on it; a tail that
// ends in an error (the connection lost, an undecodable message) hands that error to its
// followers once they finished their queues, as Store.Follow would.
type Fanout struct {
	store *Store

	mu   sync.Mutex
	tail *tail // nil: none running

	tails, drops atomic.Int64 // see Stats
}

// tail is one shared consumer and the followers on it; its fields are under Fanout.mu.
type tail struct {
	next   uint64 // the sequence of the next message it hands over: every earlier one is queued
	subs   map[*fanSub]struct{}
	cancel context.CancelFunc
}

// fanSub is one follower on a tail; its fields are under Fanout.mu.
type fanSub struct {
	from  uint64      // the first sequence it wants: the tail may be behind it
	queue [][]Message // batches handed over and not taken yet, shared with the other followers
	n     int         // messages in queue
	wake  chan struct{}
	// gone: the tail dropped it (too far behind, or the tail ended); err is the tail's error,
	// nil when it is to catch up alone.
	gone bool
	err  error
}

// fanQueueMax is how many messages a follower may have queued before the tail drops it: two
// full slices of a catch-up. A variable for tests.
var fanQueueMax = 2 * groupMax

// NewFanout returns a fanout of store's stream.
func NewFanout(store *Store) *Fanout { return &Fanout{store: store} }

// Stats: the tails started (one when the first follower needs it, one more each time every
// follower left it or it ended in an error), and the followers dropped from a tail for falling
// more than fanQueueMax messages behind (each then read alone until it caught up).
func (f *Fanout) Stats() (tails, drops int64) { return f.tails.Load(), f.drops.Load() }

// LastSeq is the store's.
func (f *Fanout) LastSeq(ctx context.Context) (uint64, error) { return f.store.LastSeq(ctx) }

// errBehind: the tail dropped the follower; it catches up alone.
var errBehind = errors.New("events: follower behind the shared consumer")

// Follow delivers messages with sequence >= from, in order, in slices of up to groupMax, to fn
// until ctx ends or fn fails, as Store.Follow does. fn must neither keep nor change the slice
// or the messages: other followers get the same ones.
func (f *Fanout) Follow(ctx context.Context, from uint64, fn func([]Message) error) error {
	next := max(from, 1)
	deliver := func(msgs []Message) error {
		if err := fn(msgs); err != nil {
			return err
		}
		next = msgs[len(msgs)-1].Seq + 1
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("events: follow from %d: %w", next, err)
		}
		f.mu.Lock()
		t := f.tail
		if t != nil && next >= t.next {
			err := f.join(ctx, t, next, deliver) // unlocks
			if errors.Is(err, errBehind) {
				continue
			}
			return err
		}
		var to uint64
		if t != nil {
			to = t.next - 1 // handed over by the tail, or before where it started: stored
		}
		f.mu.Unlock()
		if t == nil {
			last, err := f.store.LastSeq(ctx)
			if err != nil {
				return fmt.Errorf("events: follow from %d: %w", next, err)
			}
			if last < next+uint64(fanQueueMax) {
				// Near the end: a tail starts here. Far from it, the follower reads alone up
				// to it first, so that a tail never starts with a catch-up its followers
				// would fall behind at once.
				// Not past the end: a follower behind the tail reads up to where it starts,
				// which must be stored.
				f.mu.Lock()
				if f.tail != nil {
					f.mu.Unlock()
					continue // another follower started one
				}
				err := f.join(ctx, f.startLocked(min(next, last+1)), next, deliver) // unlocks
				if errors.Is(err, errBehind) {
					continue
				}
				return err
			}
			to = last
		}
		if err := f.store.Read(ctx, next, to, deliver); err != nil {
			return err
		}
		next = max(next, to+1) // messages deleted meanwhile are not waited for
	}
}

// join puts a follower at next (not behind t) on t, which the caller locked, and unlocks it;
// then it drains the follower's queue (see drain).
func (f *Fanout) join(ctx context.Context, t *tail, next uint64, deliver func([]Message) error) error {
	s := &fanSub{from: next, wake: make(chan struct{}, 1)}
	t.subs[s] = struct{}{}
	f.mu.Unlock()
	return f.drain(ctx, t, s, deliver)
}

// startLocked starts a tail at from.
func (f *Fanout) startLocked(from uint64) *tail {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tail{next: from, subs: map[*fanSub]struct{}{}, cancel: cancel}
	f.tail = t
	f.tails.Add(1)
	go func() {
		err := f.store.Follow(ctx, from, func(msgs []Message) error { return f.hand(t, msgs) })
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.tail == t {
			f.tail = nil
		}
		if ctx.Err() != nil {
			err = nil // stopped for want of followers: any left catch up alone
		}
		for s := range t.subs {
			s.gone, s.err = true, err
			s.signal()
		}
		clear(t.subs)
	}()
	return t
}

// hand queues msgs (the tail's slice, reused after it returns) for the tail's followers.
func (f *Fanout) hand(t *tail, msgs []Message) error {
	shared := slices.Clone(msgs)
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range t.subs {
		part := shared
		if part[0].Seq < s.from {
			i, _ := slices.BinarySearchFunc(part, s.from, func(m Message, seq uint64) int {
				return cmp.Compare(m.Seq, seq)
			})
			part = part[i:]
		}
		if len(part) == 0 {
			continue
		}
		if s.n+len(part) > fanQueueMax {
			delete(t.subs, s)
			s.gone = true
			s.signal()
			f.drops.Add(1)
			continue
		}
		s.queue = append(s.queue, part)
		s.n += len(part)
		s.signal()
	}
	t.next = msgs[len(msgs)-1].Seq + 1
	f.stopIdleLocked(t)
	return nil
}

// stopIdleLocked stops t once no follower is left on it.
func (f *Fanout) stopIdleLocked(t *tail) {
	if len(t.subs) == 0 {
		t.cancel()
		if f.tail == t {
			f.tail = nil
		}
	}
}

func (s *fanSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain hands s's queued messages to deliver, up to groupMax at a time, until the tail drops s
// (errBehind, or the tail's error), ctx ends or deliver fails.
func (f *Fanout) drain(ctx context.Context, t *tail, s *fanSub, deliver func([]Message) error) error {
	var batch []Message
	leave := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := t.subs[s]; ok {
			delete(t.subs, s)
			f.stopIdleLocked(t)
		}
	}
	for {
		f.mu.Lock()
		queue, gone, terr := s.queue, s.gone, s.err
		s.queue, s.n = nil, 0
		f.mu.Unlock()
		for len(queue) > 0 {
			// One slice of up to groupMax messages: a follower that fell behind commits fewer,
			// larger batches, as when it follows alone.
			out := queue[0]
			if len(queue) > 1 {
				batch = batch[:0]
				for len(queue) > 0 && len(batch)+len(queue[0]) <= groupMax {
					batch = append(batch, queue[0]...)
					queue = queue[1:]
				}
				out = batch
			} else {
				queue = queue[1:]
			}
			if err := deliver(out); err != nil {
				leave()
				return err
			}
		}
		if gone {
			if terr != nil {
				return fmt.Errorf("events: shared follow: %w", terr)
			}
			return errBehind
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			leave()
			return fmt.Errorf("events: follow: %w", ctx.Err())
		}
	}
}
