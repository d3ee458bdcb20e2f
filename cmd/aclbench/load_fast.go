package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// fastLoader writes a tenant's events straight to the stream, for data sets of 10^6 records in
// minutes instead of the hour the command path would take. It still makes every event the way
// the command service does: each generated command is decided by aggregates.Decide on the
// facts so far (so the events are exactly the types and data Decide produces, and a generator
// bug is refused as the service would refuse it), wrapped by events.New with the command's id,
// hash and cause, checked by Validate, and sent as one message per command and aggregate with
// the command id as Nats-Msg-Id. What it leaves out is the network round trip per command and
// the expected-sequence header: it must be the stream's only writer while it runs, which
// loadFast checks by refusing a tenant that already exists.
//
// Publishing is asynchronous with up to maxPending acks outstanding; JetStream keeps the order
// of one connection's publishes, so every aggregate's events are stored in decision order.
type fastLoader struct {
	js       jetstream.JetStream
	st       *stack
	now      func() time.Time
	failed   atomic.Int64
	firstErr atomic.Value
	msgs     atomic.Int64
	events   atomic.Int64

	mu        sync.Mutex
	validated map[string]int // envelopes checked by type
}

// maxPending is JetStream's limit of outstanding asynchronous acks (JETSTREAM.md).
const maxPending = 4000

func newFastLoader(s *stack) (*fastLoader, error) {
	l := &fastLoader{st: s, now: time.Now, validated: map[string]int{}}
	js, err := jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			l.failed.Add(1)
			l.firstErr.CompareAndSwap(nil, errBox{fmt.Errorf("publish %s: %w", m.Subject, err)})
		}))
	if err != nil {
		return nil, err
	}
	l.js = js
	return l, nil
}

// loaderFacts are the facts the fast path decides on: a tenant's state and its principals, as
// the command service would read them. Records are not kept (a loaded tenant has up to 10^6 of
// them, and no generated command reads a record: each record is registered once, by an
// administrator whose scope is all), so memory stays at the principals' size.
type loaderFacts struct{ *aggregates.Memory }

func (f loaderFacts) apply(e events.Envelope) error {
	if e.Aggregate.Kind == events.KindRecord {
		return nil
	}
	return f.Memory.Apply(e)
}

// loadTenant decides and publishes every phase of t, then waits for every ack. The phases
// that register records run on every core: their decisions read the facts and change nothing
// in them (record events are not kept), so they are independent; the others run in order.
func (l *fastLoader) loadTenant(ctx context.Context, t *Tenant, progress func(n int)) error {
	if first, err := l.st.firstSeq(ctx, tenantSubject(t.ID)); err != nil {
		return err
	} else if first > 0 {
		return fmt.Errorf("tenant %s already has events: the fast path must write a new tenant (use another --prefix or --seed, or a fresh --data)", t.ID)
	}
	f := loaderFacts{aggregates.NewMemory(t.ID)}
	for _, ph := range t.Phases() {
		workers := 1
		if ph.Name == phaseRecords || ph.Name == phaseClients {
			workers = runtime.GOMAXPROCS(0)
		}
		if err := l.phase(ctx, f, ph, workers, progress); err != nil {
			return err
		}
	}
	return l.flush(ctx)
}

// phase runs the items of one phase with workers goroutines.
func (l *fastLoader) phase(ctx context.Context, f loaderFacts, ph Phase, workers int, progress func(n int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	errc := make(chan error, workers)
	for range workers {
		go func() {
			errc <- func() error {
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= ph.Items {
						return nil
					}
					for _, cmd := range ph.Item(i) {
						if err := l.command(ctx, f, cmd, workers == 1); err != nil {
							return fmt.Errorf("%s item %d: %w", ph.Name, i, err)
						}
						if progress != nil {
							progress(1)
						}
					}
					if err := l.err(); err != nil {
						return err
					}
				}
				return ctx.Err()
			}()
		}()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// command decides one command and publishes its writes. apply folds its events into the facts
// (only when the phase runs alone: concurrent phases change nothing there).
func (l *fastLoader) command(ctx context.Context, f loaderFacts, cmd aggregates.Command, apply bool) error {
	ws, err := aggregates.Decide(f, cmd, l.now())
	if err != nil {
		return err
	}
	b := cmd.Base()
	now := l.now().UTC()
	hash := commands.Hash(cmd)
	written := 0
	for _, w := range ws {
		if len(w.Events) > 0 {
			written++
		}
	}
	for _, w := range ws {
		if len(w.Events) == 0 {
			continue
		}
		meta := events.Meta{Tenant: b.Tenant, Aggregate: w.Aggregate, Actor: b.Actor, CommandID: b.CommandID,
			CommandHash: hash, Cause: cmd.Name(), Time: now}
		envs := make([]events.Envelope, 0, len(w.Events))
		for _, d := range w.Events {
			env, err := events.New(meta, d)
			if err != nil {
				return err
			}
			if l.sample(env.Type) {
				if err := env.Validate(); err != nil {
					return err
				}
			}
			envs = append(envs, env)
			if apply {
				if err := f.apply(env); err != nil {
					return err
				}
			}
		}
		msgID := b.CommandID
		if written > 1 { // the command service's message id in a batch
			msgID += "/" + aggregateKey(w.Aggregate)
		}
		if err := l.publish(ctx, envs, msgID); err != nil {
			return err
		}
	}
	return nil
}

// validateFirst is how many envelopes of each type the loader checks with Validate (which
// decodes the data again): enough to catch a generator that makes bad events, without paying
// a decode per event on 10^6 of them (the events come from Decide's typed data and cannot
// differ from one record to the next in anything Validate checks).
const validateFirst = 256

func (l *fastLoader) sample(typ string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.validated[typ]++
	return l.validated[typ] <= validateFirst
}

// publish sends one message asynchronously, waiting for acks when too many are outstanding.
func (l *fastLoader) publish(ctx context.Context, envs []events.Envelope, msgID string) error {
	subject, err := events.Subject(envs[0].Tenant, envs[0].Aggregate)
	if err != nil {
		return err
	}
	data, err := json.Marshal(envs)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	for {
		_, err = l.js.PublishMsgAsync(msg)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			break
		}
		if err := l.wait(ctx); err != nil {
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	l.msgs.Add(1)
	l.events.Add(int64(len(envs)))
	return nil
}

// wait blocks until every outstanding publish is acknowledged.
func (l *fastLoader) wait(ctx context.Context) error {
	select {
	case <-l.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits for every ack and reports the first failure.
func (l *fastLoader) flush(ctx context.Context) error {
	if err := l.wait(ctx); err != nil {
		return err
	}
	return l.err()
}

func (l *fastLoader) err() error {
	if b, ok := l.firstErr.Load().(errBox); ok {
		return fmt.Errorf("%d publishes failed, first: %w", l.failed.Load(), b.err)
	}
	return nil
}

// aggregateKey names an aggregate in a batch's message ids, as the command service does.
func aggregateKey(a events.AggregateRef) string {
	if a.Kind == events.KindRecord {
		return a.Kind + "." + a.Type + "." + a.ID
	}
	return a.Kind + "." + a.ID
}

func tenantSubject(tenant string) string {
	s, _ := events.Subject(tenant, events.TenantRef(tenant))
	return s
}
