package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/cockroachdb/pebble/v2"
)

// Feed derives the change feed (SPEC section 8) from what the projector commits: for each
// event of a committed message, the effect on each principal whose access it changes
// (effects.go, over the read model as it stood before the message, with the message's
// aggregate replaced by its state before and after the event), published as an
// aggregates.Change. It runs after the commit, so a check with min_seq = the change's seq
// already agrees with it, and on its own goroutine (Run), so that the projector does not wait
// for it; changes are published in stream order.
//
// Only live messages are announced: those the projector applies once it has caught up with the
// stream as it stood when it started (Projector.Ready), and at most MaxAge old. Every acld
// instance runs a projector and a feed; FeedOptions.Publish is given the same message id for
// the same change on every instance (seq, event and principal), and the publisher (events.Changes)
// stores each id once, so a subscriber receives each change once. MaxAge, below the publisher's
// duplicate window, keeps a lagging instance from announcing a change after that window.
type Feed struct {
	e    *Engine
	o    FeedOptions
	jobs chan feedJob
	done chan struct{} // closed when Run returns

	published atomic.Uint64 // last stream sequence whose changes are published
	waitMu    sync.Mutex
	advanced  chan struct{}
}

// FeedOptions configures a Feed.
type FeedOptions struct {
	// Publish sends one change; msgID is the same for the same change on every instance.
	Publish func(ctx context.Context, tenant, principal, msgID string, body []byte) error
	// Flush waits until everything published so far is acknowledged (nil: nothing to wait for).
	Flush func(ctx context.Context) error
	// MaxAge: older events are not announced (0: DefaultFeedMaxAge).
	MaxAge time.Duration
	Logger *slog.Logger
}

// DefaultFeedMaxAge is the age past which an event is not announced: half of the changes
// stream's duplicate window (events.ChangesDuplicateWindow).
const DefaultFeedMaxAge = time.Minute

// feedJob is one committed message: the read model before it, and its decoded events.
type feedJob struct {
	snap *pebble.Snapshot
	seq  uint64
	at   time.Time
	evs  []decodedEvent
}

// NewFeed returns a feed over e's read model; Projector.SetFeed hands it the commits and Run
// publishes them.
func NewFeed(e *Engine, o FeedOptions) *Feed {
	if o.MaxAge == 0 {
		o.MaxAge = DefaultFeedMaxAge
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Feed{e: e, o: o, jobs: make(chan feedJob, 1024), done: make(chan struct{}), advanced: make(chan struct{})}
}

// SetFeed makes the projector hand every live committed message to f. Call it before Run.
func (p *Projector) SetFeed(f *Feed) { p.feed = f }

// Published is the last stream sequence whose changes the feed has published.
func (f *Feed) Published() uint64 { return f.published.Load() }

// Run publishes the changes of the messages handed over, in order, until ctx ends.
func (f *Feed) Run(ctx context.Context) error {
	defer close(f.done)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case j := <-f.jobs:
					j.snap.Close()
				default:
					return nil
				}
			}
		case j := <-f.jobs:
			if err := f.publishJob(ctx, j); err != nil && ctx.Err() == nil {
				// A change that cannot be published is reported and skipped: the feed is a
				// notification; diff from the last seq seen tells a subscriber what it missed.
				f.o.Logger.Warn("change feed: not published", "seq", j.seq, "err", err)
			}
			f.advance(j.seq)
		}
	}
}

// hand passes a committed message to Run; a stopped feed drops it.
func (f *Feed) hand(j feedJob) {
	if time.Since(j.at) > f.o.MaxAge {
		j.snap.Close()
		f.advance(j.seq)
		return
	}
	select {
	case f.jobs <- j:
	case <-f.done:
		j.snap.Close()
	}
}

func (f *Feed) advance(seq uint64) {
	f.waitMu.Lock()
	f.published.Store(seq)
	close(f.advanced)
	f.advanced = make(chan struct{})
	f.waitMu.Unlock()
}

// WaitFor returns once the changes up to seq are published, or ctx's error.
func (f *Feed) WaitFor(ctx context.Context, seq uint64) error {
	for {
		f.waitMu.Lock()
		if f.published.Load() >= seq {
			f.waitMu.Unlock()
			return nil
		}
		ch := f.advanced
		f.waitMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Feed) publishJob(ctx context.Context, j feedJob) error {
	if len(j.evs) == 0 {
		j.snap.Close()
		return nil
	}
	changes, err := f.e.changesOf(j.snap, j.seq, j.evs) // closes the snapshot
	if err != nil {
		return err
	}
	for _, c := range changes {
		body, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("projections: encode change: %w", err)
		}
		id := fmt.Sprintf("%d.%s.%s", c.Seq, c.Event, c.Principal)
		if err := f.o.Publish(ctx, c.Tenant, c.Principal, id, body); err != nil {
			return err
		}
	}
	if f.o.Flush != nil && len(changes) > 0 {
		return f.o.Flush(ctx)
	}
	return nil
}

// changesOf derives the changes of one message (its events all concern one aggregate of one
// tenant) over snap, the read model before it; it closes snap.
func (e *Engine) changesOf(snap *pebble.Snapshot, seq uint64, evs []decodedEvent) ([]aggregates.Change, error) {
	tenant := evs[0].e.Tenant
	v, err := e.viewAt(snap, tenant)
	if err != nil {
		return nil, err
	}
	defer v.close()
	var out []aggregates.Change
	cur := newSide(v)
	for _, de := range evs {
		nxt, err := cur.next(de.e, de.d)
		if err != nil {
			return nil, err
		}
		effs, err := effects(cur, nxt)
		if err != nil {
			return nil, err
		}
		for _, ef := range effs {
			out = append(out, aggregates.Change{Seq: seq, Event: de.e.ID, Tenant: tenant, Effect: ef})
		}
		cur = nxt
	}
	return out, nil
}

// viewAt opens a view of tenant over snap, which it then owns (close closes it). A tenant
// that does not exist there is answered as its state before its first event.
func (e *Engine) viewAt(snap *pebble.Snapshot, tenant string) (*view, error) {
	v := views.Get().(*view)
	*v = view{e: e, snap: snap, tenant: tenant, tid: tenant, kbuf: v.kbuf[:0]}
	var err error
	if v.seq, err = readApplied(snap); err != nil {
		v.close()
		return nil, err
	}
	v.t, err = e.tenant(snap, tenant)
	if aggregates.ErrorCode(err) == aggregates.CodeNotFound {
		v.t, err = aggregates.NewTenant(tenant), nil
	}
	if err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}
