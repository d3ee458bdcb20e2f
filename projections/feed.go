package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Feed derives the change feed (SPEC section 8) from what the projector commits: for each
// event of a committed message, the effect on each principal whose access it changes
// (effects.go, over the read model as it stood before the message, with the message's
// aggregate replaced by its state before and after the event), published as an
// aggregates.Change. It runs after the commit, so a check with min_seq = the change's seq
// already agrees with it, and on its own goroutine (Run), so that the projector does not wait
// for it; changes are published in stream order.
//
// The feed never holds the projector up: it queues at most feedQueue messages, and a message
// that finds the queue full is not announced (nor are the messages of a batch too large for
// the queue's room, which the projector then commits together). Instead the feed publishes,
// in order, a gap on acl.changes.<tenant>.gap ({"tenant":..,"from":N,"to":M}: changes of that
// tenant's events in sequences N to M were not all announced), so a subscriber knows to ask
// diff from the last seq it saw.
//
// Only live messages are announced: those the projector applies once it has caught up with the
// stream as it stood when it started (Projector.Ready), and at most MaxAge old. Every acld
// instance runs a projector and a feed; FeedOptions.Publish is given the same message id for
// the same change on every instance (seq, event and principal), and the publisher (events.Changes)
// stores each id once, so a subscriber receives each change once. MaxAge, below the publisher's
// duplicate window, keeps a lagging instance from announcing a change after that window.
//
// With FeedOptions.Listeners the feed derives only what a subscription would receive: NATS
// drops a message that no subscription matches, and a subscriber that arrives later starts
// from permissions or diff anyway. It asks when it derives a message, after its commit, so a
// subscription made before the commit is seen: a subscriber that subscribes, then reads its
// access (seq S), receives every change after S. The projector commits together the live
// messages of tenants nobody listened to as the last Refresh found them (quiet runs, quiet),
// with one snapshot before them; the feed asks after their commit whether a subscription was
// made since that Refresh (Listeners.Unmoved: the account's count of insertions), and derives
// them over that snapshot only if one was (changesOfRun).
type Feed struct {
	e    *Engine
	o    FeedOptions
	jobs chan feedJob
	done chan struct{} // closed when Run returns

	gapMu sync.Mutex
	gaps  map[string]*Gap // tenant -> the sequences dropped since the last published gap

	budget cpuBudget // Run's working time (FeedOptions.CPU)

	// Gaps are logged at most every gapLogEvery, with how many there were since: under a bulk
	// load the feed publishes thousands.
	gapLogged time.Time
	gapsSince int

	published Watermark // last stream sequence whose changes are published (and acknowledged)

	// Run's goroutine only: changes published and not yet acknowledged, and the last sequence
	// handled (published will be it once they are).
	unacked    int
	pendingSeq uint64

	// Run's goroutine only: the Visible maps of the changes published, for the next ones.
	maps effectMaps

	// What became of the messages handed over (Collectors): announced, their changes, and
	// not announced (in a gap, or older than MaxAge); the events and gaps nobody listened to.
	announced, changes, dropped atomic.Uint64
	unheardEvents, unheardGaps  atomic.Uint64
	// Quiet runs (Feed.quiet) nobody heard, and those derived: a subscription came meanwhile.
	quietRuns, heardRuns atomic.Uint64

	// Run's goroutine only: who listens to the message being derived (FeedOptions.Listeners),
	// and when the feed last asked which tenants have a subscription.
	aud       audience
	refreshed time.Time

	// The last sequence handed over (after its commit), and Run's last answer of Unmoved: true
	// for mark, asked once every job up to upto was handed over, so it holds for those jobs.
	handedSeq atomic.Uint64
	verified  struct {
		mark, upto uint64
		ok         bool
		at         time.Time
		// A mark Unmoved answered false for: insertions only grow, so that mark and every
		// smaller one stay moved, and the jobs still queued with them need no ask (nor its wait).
		moved    uint64
		anyMoved bool
	}
}

// Collectors are the feed's metrics: how many committed messages it announced and how many it
// did not (counted in gaps: over its CPU share, its queue full, or older than MaxAge), and the
// changes it published. Their ratio, with the process's CPU, says what the feed costs per
// announced message and how much of a burst it keeps up with.
func (f *Feed) Collectors() []prometheus.Collector {
	counter := func(v *atomic.Uint64) func() float64 { return func() float64 { return float64(v.Load()) } }
	unheard := func(what string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_unheard_total",
			Help:        "Events whose changes, and gaps, the change feed did not derive or publish: no subscription would have received them.",
			ConstLabels: prometheus.Labels{"what": what}}, counter(v))
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_messages_total",
			Help: "Committed messages handed to the change feed and announced.", ConstLabels: prometheus.Labels{"outcome": "announced"}},
			counter(&f.announced)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_messages_total",
			Help: "Committed messages handed to the change feed and announced.", ConstLabels: prometheus.Labels{"outcome": "not_announced"}},
			counter(&f.dropped)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_changes_total",
			Help: "Changes the change feed published (one per event and principal whose access it changed)."},
			counter(&f.changes)),
		unheard("events", &f.unheardEvents),
		unheard("gaps", &f.unheardGaps),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_quiet_runs_total",
			Help:        "Runs of live messages of tenants nobody listened to, committed together (quiet runs): not derived, as nobody heard them.",
			ConstLabels: prometheus.Labels{"outcome": "unheard"}}, counter(&f.quietRuns)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "acl_change_feed_quiet_runs_total",
			Help:        "Runs of live messages of tenants nobody listened to, committed together (quiet runs): not derived, as nobody heard them.",
			ConstLabels: prometheus.Labels{"outcome": "derived"}}, counter(&f.heardRuns)),
	}
}

// QuietRuns is how many quiet runs nobody heard, and how many were derived because a
// subscription was made meanwhile.
func (f *Feed) QuietRuns() (unheard, derived uint64) { return f.quietRuns.Load(), f.heardRuns.Load() }

// Unheard is how many events the feed did not derive, and how many gaps it did not publish,
// because no subscription would have received them (FeedOptions.Listeners).
func (f *Feed) Unheard() (events, gaps uint64) { return f.unheardEvents.Load(), f.unheardGaps.Load() }

// Changes is how many changes the feed has published.
func (f *Feed) Changes() uint64 { return f.changes.Load() }

// Announced is how many committed messages the feed derived and announced (unheard ones are
// counted by Unheard).
func (f *Feed) Announced() uint64 { return f.announced.Load() }

// Listeners tells the feed who would receive its messages (events.ChangesListeners asks the
// embedded NATS server).
type Listeners interface {
	// Refresh learns which tenants have a subscription, for Tenant.
	Refresh()
	// Tenant reports whether a subscription, as Refresh learned them, may receive some
	// message of tenant's feed; it holds for every subscription made before that Refresh.
	Tenant(tenant string) bool
	// Everyone reports whether a subscription would receive every principal's changes in
	// tenant (a wildcard in the principal's place).
	Everyone(tenant string) bool
	// Principal reports whether a subscription would receive principal's changes in tenant.
	Principal(tenant, principal string) bool
	// Gaps reports whether a subscription would receive tenant's gaps.
	Gaps(tenant string) bool
	// Quiet reports whether no subscription may receive any message of tenant's feed, as the
	// last Refresh learned them, and if so a mark of that Refresh for Unmoved; false when it
	// cannot tell.
	Quiet(tenant string) (mark uint64, ok bool)
	// Unmoved reports whether no subscription was made since the Refresh that mark marks: what
	// Quiet answered with it holds for every subscription made until Unmoved was asked.
	Unmoved(mark uint64) bool
}

// FeedOptions configures a Feed.
type FeedOptions struct {
	// Publish sends one message of tenant's feed on tail ("principal.<id>" or "gap"); msgID
	// is the same for the same message on every instance.
	Publish func(ctx context.Context, tenant, tail, msgID string, body []byte) error
	// Flush waits until everything published so far is acknowledged (nil: nothing to wait for).
	Flush func(ctx context.Context) error
	// MaxAge: older events are not announced (0: DefaultFeedMaxAge).
	MaxAge time.Duration
	// Listeners, when set, tells who would receive a change or a gap: the feed derives and
	// publishes only those (nil: everything, for a NATS server acld cannot ask).
	Listeners Listeners
	// CPU is the share of one core the feed may spend deriving changes, on average over a few
	// seconds (0: DefaultFeedCPU; negative: no bound). Past it, messages are announced as gaps
	// instead. Counted: deriving and publishing, and waiting for the changes stream's
	// acknowledgements while more messages wait (not when the feed is idle). When deriving a
	// record event asked every holder of its view permission (~200 ms at 10^4 principals), an
	// unbounded feed starved the commands and queries it announces (one writer assigning
	// records and checking: 968 writes+reads/s without the feed, 5 with it, on aclbench's
	// compare shape); it now asks who may see the record (0.2 ms for an assignment there, ~15
	// ms for a registration 1,001 principals see), and a registration's changes remain many.
	CPU float64
	// Queue is how many committed messages may wait for the feed before the projector drops
	// them as a gap (0: feedQueue). Each holds a Pebble snapshot while it waits; a test that
	// checks every change of a burst sets it above the burst, so that a slow machine makes no
	// gap it does not expect.
	Queue  int
	Logger *slog.Logger
}

// Gap is a feed message saying that the changes of Tenant's events at sequences From to To
// were not announced (the feed was behind).
type Gap struct {
	Tenant string `json:"tenant"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
}

// feedQueue is how many committed messages wait for the feed at most (each holds a Pebble
// snapshot).
const feedQueue = 256

// DefaultFeedMaxAge is the age past which an event is not announced: half of the changes
// stream's duplicate window (events.ChangesDuplicateWindow).
const DefaultFeedMaxAge = time.Minute

// gapLogEvery bounds the feed's log lines about gaps.
const gapLogEvery = 10 * time.Second

// logGap logs g, or counts it until gapLogEvery has passed since the last line; Run's goroutine
// only.
func (f *Feed) logGap(g Gap) {
	f.gapsSince++
	if time.Since(f.gapLogged) < gapLogEvery {
		return
	}
	f.o.Logger.Warn("change feed behind: changes not announced (announced as gaps)", "tenant", g.Tenant, "from", g.From, "to", g.To,
		"gaps_since_last_line", f.gapsSince)
	f.gapLogged, f.gapsSince = time.Now(), 0
}

// DefaultFeedCPU is the feed's default share of one core (FeedOptions.CPU).
const DefaultFeedCPU = 0.25

// feedBurst is how much working time beyond its share the feed may spend at once: a burst of
// changes after a quiet moment is announced whole.
const feedBurst = 2 * time.Second

// cpuBudget is a token bucket of working time: it fills at rate seconds per second, up to
// rate*feedBurst; work spends it, possibly below zero (one expensive message), and nothing more
// is done until it is positive again.
type cpuBudget struct {
	rate   float64
	tokens time.Duration
	last   time.Time
}

func (b *cpuBudget) allow(now time.Time) bool {
	if b.rate < 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.tokens+time.Duration(float64(now.Sub(b.last))*b.rate), time.Duration(float64(feedBurst)*b.rate))
	}
	b.last = now
	return b.tokens > 0
}

func (b *cpuBudget) spend(d time.Duration) { b.tokens -= d }

// feedJob is one committed message, or a run of messages the projector committed together
// because nobody listened to them (quiet): the read model before it, and its decoded events.
type feedJob struct {
	snap   *pebble.Snapshot
	seq    uint64 // the last message's
	at     time.Time
	evs    []decodedEvent
	handed time.Time // after its commit

	// A quiet run: no subscription to its tenants' feeds as the Refresh that mark marks found
	// them (Listeners.Quiet), asked before its commit. Unless one was made since (Unmoved,
	// asked after the commit), nobody can hear its changes.
	quiet bool
	mark  uint64
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
	if o.CPU == 0 {
		o.CPU = DefaultFeedCPU
	}
	return &Feed{e: e, o: o, jobs: make(chan feedJob, cmp.Or(o.Queue, feedQueue)), done: make(chan struct{}),
		gaps: map[string]*Gap{}, budget: cpuBudget{rate: o.CPU, tokens: time.Duration(float64(feedBurst) * max(o.CPU, 0))}}
}

// SetFeed makes the projector hand every live committed message to f. Call it before Run.
func (p *Projector) SetFeed(f *Feed) { p.feed = f }

// Published is the last stream sequence whose changes the feed has published.
func (f *Feed) Published() uint64 { return f.published.Load() }

// Run publishes the changes of the messages handed over, in order, until ctx ends. Close,
// once the projector has stopped, releases what is still queued.
func (f *Feed) Run(ctx context.Context) error {
	defer close(f.done)
	for {
		var j feedJob
		select {
		case <-ctx.Done():
			return nil
		case j = <-f.jobs:
		default:
			f.idle(ctx)
			select {
			case <-ctx.Done():
				return nil
			case j = <-f.jobs:
			}
		}
		n, err, heard := 0, error(nil), false
		if j.quiet && f.unmoved(ctx, j) {
			// Nobody could hear the run: no change derived, no gap. Gaps before it come first.
			f.publishGaps(ctx, j.seq)
			j.snap.Close()
			f.unheardEvents.Add(uint64(len(j.evs)))
			f.quietRuns.Add(1)
		} else {
			if j.quiet {
				f.heardRuns.Add(1)
			}
			if !f.budget.allow(time.Now()) {
				// Over its share of the CPU: announced as a gap, as a message the queue had no
				// room for.
				j.snap.Close()
				f.dropEach(j.evs, nil)
				continue
			}
			f.publishGaps(ctx, j.seq)
			if n, err, heard = f.publish(ctx, j); ctx.Err() != nil {
				return nil
			}
		}
		if err != nil && ctx.Err() == nil {
			// A change that cannot be published is reported and skipped: the feed is a
			// notification; diff from the last seq seen tells a subscriber what it missed.
			f.o.Logger.Warn("change feed: not published", "seq", j.seq, "err", err)
		}
		f.unacked += n
		f.changes.Add(uint64(n))
		if err == nil && heard {
			f.announced.Add(uint64(messagesIn(j.evs))) // an unheard message is counted in unheardEvents, not here
		}
		f.pendingSeq = j.seq
		switch backlog := len(f.jobs) > 0; {
		case f.unacked == 0:
			f.advance(j.seq) // nothing published waits for its acknowledgement
		case !backlog:
			f.flush(ctx) // idle: waiting for the acknowledgements delays nothing
		case f.unacked >= feedUnacked:
			// Behind and waiting for the changes stream: that time is the feed's.
			start := time.Now()
			f.flush(ctx)
			f.budget.spend(time.Since(start))
		}
	}
}

// publish derives and publishes j's changes to whoever listens (listening, which may wait for
// the next Refresh: not working time), and answers how many it published and whether anyone
// listened.
func (f *Feed) publish(ctx context.Context, j feedJob) (n int, err error, heard bool) {
	if len(j.evs) > 0 && j.evs[0].e.Seq != j.seq {
		return f.publishRun(ctx, j)
	}
	aud, heard := f.listening(ctx, f.tenantOf(j), j.handed)
	if ctx.Err() != nil {
		j.snap.Close()
		return 0, nil, false
	}
	start := time.Now()
	if heard {
		n, err = f.publishJob(ctx, j, aud)
	} else {
		j.snap.Close()
		f.unheardEvents.Add(uint64(len(j.evs)))
	}
	f.budget.spend(time.Since(start))
	return n, err, heard
}

func (f *Feed) tenantOf(j feedJob) string {
	if len(j.evs) == 0 {
		return ""
	}
	return j.evs[0].e.Tenant
}

// publishRun is publish for a run of messages committed together (a quiet run that someone
// may have heard after all): their changes derived over the read model before the run, one
// message after the other (changesOfRun), for the tenants someone listens to.
func (f *Feed) publishRun(ctx context.Context, j feedJob) (n int, err error, heard bool) {
	hear := map[string]*audience{} // nil: everyone's changes
	for _, de := range j.evs {
		t := de.e.Tenant
		if _, ok := hear[t]; ok {
			continue
		}
		aud, h := f.listening(ctx, t, j.handed)
		if ctx.Err() != nil {
			j.snap.Close()
			return 0, nil, false
		}
		switch {
		case !h:
			hear[t] = &audience{} // nobody: l nil
		case aud != nil:
			a := *aud // listening's is reused
			hear[t] = &a
		default:
			hear[t] = nil
		}
		heard = heard || h
	}
	start := time.Now()
	defer func() { f.budget.spend(time.Since(start)) }()
	changes, unheard, err := f.e.changesOfRun(j.snap, j.evs, &f.maps, hear) // closes the snapshot
	f.unheardEvents.Add(uint64(unheard))
	if err != nil {
		return 0, err, heard
	}
	n, err = f.publishChanges(ctx, changes)
	return n, err, heard
}

// unmoved reports whether no subscription was made since j's mark (Listeners.Unmoved), asked
// after j's commit; one answer serves every job handed over before it was asked, so it is
// asked at most every refreshEvery (~50 µs under load, as Refresh: the commands workload
// hands over a quiet run or two a millisecond), and a quiet run waits for it as a message
// waits for a Refresh (listening). When a subscription was made, the feed asks which tenants
// have one again, for the next quiet runs.
func (f *Feed) unmoved(ctx context.Context, j feedJob) bool {
	if v := f.verified; v.ok && v.mark == j.mark && j.seq <= v.upto {
		return true
	}
	if v := f.verified; v.anyMoved && j.mark <= v.moved {
		return false
	}
	if !sleep(ctx, time.Until(f.verified.at.Add(refreshEvery))) {
		return false
	}
	f.verified.at = time.Now()
	upto := f.handedSeq.Load() // before asking: those jobs were committed before
	if !f.o.Listeners.Unmoved(j.mark) {
		f.verified.ok = false
		f.verified.moved, f.verified.anyMoved = max(f.verified.moved, j.mark), true
		f.refreshed = time.Now()
		f.o.Listeners.Refresh()
		return false
	}
	f.verified.mark, f.verified.upto, f.verified.ok = j.mark, upto, true
	return true
}

// sleep waits for d (none when d <= 0) and reports whether ctx was not done by then.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// messagesIn counts the messages of evs (a message's events are adjacent and share its seq).
func messagesIn(evs []decodedEvent) int {
	n := 0
	for i, de := range evs {
		if i == 0 || evs[i-1].e.Seq != de.e.Seq {
			n++
		}
	}
	return n
}

// idle is Run's step when no message waits: the gaps of the messages dropped after the last
// one queued come now, and what is published is acknowledged.
func (f *Feed) idle(ctx context.Context) {
	f.publishGaps(ctx, 0)
	if f.unacked > 0 {
		f.flush(ctx)
	}
}

// feedUnacked is how many published changes the feed lets wait for their acknowledgement
// while more messages are queued.
const feedUnacked = 256

// flush waits for the acknowledgement of every change published so far, then advances the
// published sequence to the last message handled. The wait is not counted in the CPU budget
// when the feed is idle: it is the changes stream's round trip (a few hundred µs under load,
// most of a cheap message's handling), not work the feed takes from commands and queries.
func (f *Feed) flush(ctx context.Context) {
	if f.unacked > 0 && f.o.Flush != nil {
		if err := f.o.Flush(ctx); err != nil && ctx.Err() == nil {
			f.o.Logger.Warn("change feed: not acknowledged", "seq", f.pendingSeq, "err", err)
		}
	}
	f.unacked = 0
	f.advance(f.pendingSeq)
}

// Close releases the snapshots of messages still queued. Call it after the projector and Run
// have stopped.
func (f *Feed) Close() {
	for {
		select {
		case j := <-f.jobs:
			j.snap.Close()
		default:
			return
		}
	}
}

// hand passes a committed message to Run without waiting: when the queue is full, the message
// is dropped and counted in its tenant's gap.
func (f *Feed) hand(j feedJob) {
	j.handed = time.Now()
	f.handedSeq.Store(j.seq) // the projector's goroutine only
	if j.handed.Sub(j.at) > f.o.MaxAge {
		j.snap.Close()
		f.dropped.Add(uint64(messagesIn(j.evs)))
		return
	}
	select {
	case f.jobs <- j:
		return
	default:
	}
	j.snap.Close()
	f.dropEach(j.evs, nil)
}

// dropEach drops each message of evs (live, when set, says which) into its tenant's gap.
func (f *Feed) dropEach(evs []decodedEvent, live func(seq uint64) bool) {
	for i, de := range evs {
		if (live == nil || live(de.e.Seq)) && (i == 0 || evs[i-1].e.Seq != de.e.Seq) { // once per message
			f.drop(de.e.Tenant, de.e.Seq)
		}
	}
}

// drop counts a message of tenant at seq that is not announced in the tenant's gap.
func (f *Feed) drop(tenant string, seq uint64) {
	f.dropped.Add(1)
	f.gapMu.Lock()
	if g := f.gaps[tenant]; g != nil {
		// A message the feed drops itself (over its CPU share) is older than those the
		// projector could not queue: the gap covers both.
		g.From, g.To = min(g.From, seq), max(g.To, seq)
	} else {
		f.gaps[tenant] = &Gap{Tenant: tenant, From: seq, To: seq}
	}
	f.gapMu.Unlock()
}

// room is how many messages the queue can still take.
func (f *Feed) room() int { return cap(f.jobs) - len(f.jobs) }

// publishGaps publishes the gaps that end before seq (0: all of them, when no message is
// queued: idle).
func (f *Feed) publishGaps(ctx context.Context, seq uint64) {
	f.gapMu.Lock()
	if seq == 0 && len(f.jobs) > 0 {
		// A message queued since Run found the queue empty: a gap taken now may be of a
		// message after it (the projector queues a message before it drops the next under
		// gapMu, so a gap seen here was dropped after what the queue holds). Published now,
		// it would come before the message's changes, and the published sequence would pass
		// the message before they are. Run takes the message next, and the gaps in order.
		f.gapMu.Unlock()
		return
	}
	var due []Gap
	for t, g := range f.gaps {
		if seq == 0 || g.To < seq {
			due = append(due, *g)
			delete(f.gaps, t)
		}
	}
	f.gapMu.Unlock()
	for _, g := range due {
		f.pendingSeq = max(f.pendingSeq, g.To)
		if f.o.Listeners != nil && !f.o.Listeners.Gaps(g.Tenant) {
			f.unheardGaps.Add(1)
			continue
		}
		f.logGap(g)
		body, _ := json.Marshal(g) // plain types
		err := f.o.Publish(ctx, g.Tenant, "gap", fmt.Sprintf("gap.%d.%d", g.From, g.To), body)
		if err != nil && ctx.Err() == nil {
			f.o.Logger.Warn("change feed: gap not published", "tenant", g.Tenant, "err", err)
		}
		f.unacked++
	}
	if len(due) > 0 {
		f.flush(ctx)
	}
}

func (f *Feed) advance(seq uint64) { f.published.Advance(seq) }

// WaitFor returns once the changes up to seq are published, or ctx's error.
func (f *Feed) WaitFor(ctx context.Context, seq uint64) error { return f.published.WaitFor(ctx, seq) }

// publishJob derives and publishes the changes of one message without waiting for their
// acknowledgement (flush does); it answers how many it published.
func (f *Feed) publishJob(ctx context.Context, j feedJob, aud *audience) (int, error) {
	if len(j.evs) == 0 {
		j.snap.Close()
		return 0, nil
	}
	changes, err := f.e.changesOf(j.snap, j.seq, j.evs, &f.maps, aud) // closes the snapshot
	if aud != nil {
		f.unheardEvents.Add(uint64(aud.events))
	}
	if err != nil {
		return 0, err
	}
	return f.publishChanges(ctx, changes)
}

// publishChanges publishes changes in order without waiting for their acknowledgement; it
// answers how many it published.
func (f *Feed) publishChanges(ctx context.Context, changes []aggregates.Change) (int, error) {
	for i, c := range changes {
		body, err := json.Marshal(c)
		if err != nil {
			return i, fmt.Errorf("projections: encode change: %w", err)
		}
		f.maps.put(c.Visible) // encoded: the change is not read again
		id := fmt.Sprintf("%d.%s.%s", c.Seq, c.Event, c.Principal)
		if err := f.o.Publish(ctx, c.Tenant, "principal."+c.Principal, id, body); err != nil {
			return i, err
		}
	}
	return len(changes), nil
}

// refreshEvery is how often at most the feed asks which tenants have a subscription
// (Listeners.Refresh: ~3 µs on an idle server, 50 µs of CPU under the commands workload, where
// nats-server walks a subject cache of up to ~1,000 entries to count the subscriptions; every
// message, 2-3k a second, asking it cost ~1 % of a core). A message of a tenant nobody
// listened to at the last Refresh waits for the next one, at most this long: only a
// subscriber that came meanwhile waits for its first changes. At 5,000 messages a second
// 125 wait at most, within the queue (feedQueue).
const refreshEvery = 25 * time.Millisecond

// listening says who may receive j's changes: heard is false when nobody may, and aud, when
// set, names the principals who may (nil: everyone, or a feed without Listeners). It asks
// when j is derived, after its commit: a subscription made before the commit is seen.
func (f *Feed) listening(ctx context.Context, tenant string, handed time.Time) (aud *audience, heard bool) {
	l := f.o.Listeners
	if l == nil || tenant == "" {
		return nil, true
	}
	if l.Everyone(tenant) {
		return nil, true
	}
	if !handed.Before(f.refreshed) {
		// The last Refresh may predate a subscription made before j's commit: ask again, no
		// sooner than refreshEvery after it. What Refresh learns holds for the subscriptions
		// made before it, so one serves every message committed before it. Until then a
		// tenant with a listener is safe to take as such (its principals are asked one by
		// one); one without waits.
		wait := time.Until(f.refreshed.Add(refreshEvery))
		if wait <= 0 || !l.Tenant(tenant) {
			if !sleep(ctx, wait) {
				return nil, false
			}
			f.refreshed = time.Now()
			l.Refresh()
		}
	}
	if !l.Tenant(tenant) {
		return nil, false
	}
	f.aud = audience{l: l, tenant: tenant}
	return &f.aud, true
}

// quiet answers how many of msgs, live messages the projector has not committed yet, from
// the first, are of tenants nobody listens to as the last Refresh learned them
// (Listeners.Quiet), all with one mark: the projector commits those together and hands them
// over as one quiet run, which the feed derives only if a subscription was made after that
// Refresh and before it asks, after their commit (Listeners.Unmoved). 0 without Listeners, or
// when the first message's tenant may be heard.
func (f *Feed) quiet(msgs []events.Message) (n int, mark uint64) {
	l := f.o.Listeners
	if l == nil {
		return 0, 0
	}
	prev := ""
	for i, m := range msgs {
		if len(m.Events) == 0 {
			continue
		}
		tenant := m.Events[0].Tenant // one aggregate's events: one tenant
		if tenant == prev {
			continue
		}
		mk, ok := l.Quiet(tenant)
		if !ok || (prev != "" && mk != mark) {
			return i, mark
		}
		prev, mark = tenant, mk
	}
	if prev == "" {
		return 0, 0
	}
	return len(msgs), mark
}

// changesOf derives the changes of one message (its events all concern one aggregate of one
// tenant) over snap, the read model before it; it closes snap. Their Visible maps come from
// maps (nil: new ones). aud, when set, limits them to the principals someone listens to.
func (e *Engine) changesOf(snap *pebble.Snapshot, seq uint64, evs []decodedEvent, maps *effectMaps, aud *audience) ([]aggregates.Change, error) {
	tenant := evs[0].e.Tenant
	v, err := e.viewAt(snap, tenant)
	if err != nil {
		return nil, err
	}
	defer v.close()
	cur := newSide(v)
	cur.maps = maps
	var out []aggregates.Change
	for _, de := range evs {
		if cur, out, err = deriveEvent(cur, seq, de, aud, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deriveEvent appends the changes of de, the event after cur, at seq to out; it answers the
// side after it.
func deriveEvent(cur *side, seq uint64, de decodedEvent, aud *audience, out []aggregates.Change) (*side, []aggregates.Change, error) {
	nxt, err := cur.next(de.e, de.d)
	if err != nil {
		return nil, out, err
	}
	effs, err := effects(cur, nxt, aud)
	if err != nil {
		return nil, out, err
	}
	out = slices.Grow(out, len(effs))
	for _, ef := range effs {
		out = append(out, aggregates.Change{Seq: seq, Event: de.e.ID, Tenant: de.e.Tenant, Effect: ef})
	}
	return nxt, out, nil
}

// changesOfRun derives the changes of a run of messages that were committed together, in
// stream order, over snap, the read model before the first of them; it closes snap. hear
// says, for every tenant of evs, who listens: no entry or an audience without Listeners,
// nobody (the tenant's events are not derived, and are counted in unheard); nil, everyone;
// else its principals. Each tenant's events are applied one after the other to sides over one
// view of that tenant, each message's changes being between the sides before and after its
// events: the sides hold every principal, record and tenant state the run replaced before it,
// and effects compares those on both sides, not from the snapshot, so each message's changes
// are those changesOf derives over the read model before it
// (TestChangesOfRunEqualsOneByOne).
func (e *Engine) changesOfRun(snap *pebble.Snapshot, evs []decodedEvent, maps *effectMaps, hear map[string]*audience) (out []aggregates.Change, unheard int, err error) {
	defer snap.Close()
	sides := map[string]*side{}
	defer func() {
		for _, s := range sides {
			s.v.close()
		}
	}()
	for _, de := range evs {
		t := de.e.Tenant
		aud, ok := hear[t]
		if !ok || (aud != nil && aud.l == nil) {
			unheard++
			continue
		}
		cur := sides[t]
		if cur == nil {
			v, err := e.viewOn(snap, nil, t)
			if err != nil {
				return nil, unheard, err
			}
			cur = newSide(v)
			cur.maps = maps
			sides[t] = cur // its view is closed with the others'
		}
		if sides[t], out, err = deriveEvent(cur, de.e.Seq, de, aud, out); err != nil {
			sides[t] = cur
			return nil, unheard, err
		}
	}
	for _, aud := range hear {
		if aud != nil {
			unheard += aud.events
		}
	}
	return out, unheard, nil
}

// viewAt opens a view of tenant over snap, which it then owns (close closes it). A tenant
// that does not exist there is answered as its state before its first event.
func (e *Engine) viewAt(snap *pebble.Snapshot, tenant string) (*view, error) {
	return e.viewOn(snap, snap, tenant)
}

// viewOn is viewAt with the snapshot's owner: own, nil when the caller closes it.
func (e *Engine) viewOn(snap *pebble.Snapshot, own io.Closer, tenant string) (*view, error) {
	v := views.Get().(*view)
	*v = view{e: e, snap: snap, own: own, tenant: tenant, tid: tenant, kbuf: v.kbuf[:0]}
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

// effectMaps keeps the Visible maps of changes already encoded, emptied, for the next effects:
// a map of one type's change costs a group of 8 slots (~700 bytes), the largest allocation of a
// change, and a registration derives ~1,000 changes. Not safe for concurrent use.
type effectMaps struct {
	free []map[string]aggregates.VisibleChange
}

// maxFreeMaps bounds the maps kept (a role change may derive 10^4 changes at once).
const maxFreeMaps = 4096

// get returns an empty map, reused when one is kept (m nil: a new one).
func (m *effectMaps) get() map[string]aggregates.VisibleChange {
	if m == nil || len(m.free) == 0 {
		return map[string]aggregates.VisibleChange{}
	}
	v := m.free[len(m.free)-1]
	m.free[len(m.free)-1] = nil
	m.free = m.free[:len(m.free)-1]
	return v
}

// put keeps v, emptied, for get; v must not be read again.
func (m *effectMaps) put(v map[string]aggregates.VisibleChange) {
	if m == nil || v == nil || len(m.free) >= maxFreeMaps {
		return
	}
	clear(v)
	m.free = append(m.free, v)
}
