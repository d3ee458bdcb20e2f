package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Options configure a Service; zero values take the defaults.
type Options struct {
	// Queue is the queue group (default QueueGroup): instances in one group share the load.
	Queue string
	// Timeout bounds the work on one command (default 9s, so that it answers within 10 s).
	Timeout time.Duration
	// MaxAttempts bounds the decisions of one command that lose a race on an aggregate's
	// sequence (default 8); then it answers conflict.
	MaxAttempts int
	// Concurrency is how many commands one instance works on at once (default 256).
	Concurrency int
	// CacheSize is how many aggregate states the cache keeps in memory (default 200,000, or
	// 20,000 with StateDir: the others are read from the spill in microseconds). A state is about
	// 1.3 KB (a record with the commands it remembers): 200,000 of them were 267 MB of a 343 MB
	// live heap after a load of 2*10^5 records. A state not cached costs one read of its subject
	// (a direct get), for which nats-server loads the 8 MB message block holding it and keeps it
	// for 10 s: with 10,000, commands on random records of 2*10^5 ran at 400/s and the server's
	// heap grew to 377 MB of blocks. A command creating its aggregate reads nothing (see
	// execution.read), and tenants are never evicted.
	CacheSize int
	// StateDir, when set, is where the cache keeps the principal and record states it holds
	// no longer (spill.go), emptied at Start: a dropped state is then read from local disk in
	// microseconds instead of from the stream, so CacheSize can be small. Empty: off.
	StateDir string
	// BlockCache, when set, is the spill's Pebble block cache, shared with the caller's other
	// stores (the caller keeps its reference until Close); nil: one of its own, of 8 MiB.
	BlockCache *pebble.Cache
	// Follow, when set, is what the spill's follower reads the stream through (acld: the fanout
	// it shares with the projector and the audit index); nil: a consumer of its own.
	Follow events.Follower
	// SnapshotAfter is how many events a tenant's state may gain (by a load or by this
	// instance's writes) before the service stores a new snapshot of it, and at least half as
	// many as the commands the tenant remembers (default 1000; negative: snapshots are neither
	// read nor written). See snapshot.go.
	SnapshotAfter int
	// SnapshotBucket is the object store of the snapshots (default events.DefaultSnapshotBucket).
	SnapshotBucket string
	// Registerer gets the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger logs internal errors (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock of event times (default time.Now).
	Now func() time.Time
	// Identify names the caller of a request from its headers (SPEC section 5, "Callers"): a
	// nil caller is unrestricted and writes as Self; an error (unauthenticated) is the answer.
	// nil: every request is unrestricted.
	Identify func(h nats.Header) (*aggregates.Caller, error)
	// Effects evaluates a dry run's events (SPEC section 8): over the read model at or after
	// sequence minSeq (the stream's last), what they would do to each principal's access, and the
	// read model's sequence used. acld gives it the projections' (commands does not import
	// them, DESIGN); nil: dry runs answer no effects.
	Effects func(ctx context.Context, tenant string, minSeq uint64, envs []events.Envelope) (uint64, []aggregates.Effect, error)
	// Self is the via of commands from an unrestricted caller (default "acld").
	Self string
	// Offer, when set, is told before each append to a principal's or a record's subject of
	// the state the decision read, whose Seq the append states as the subject's last sequence:
	// acld gives it to its projector (projections.Projector.Offer), which applying the message
	// would otherwise read that state from the read model. The state is shared and must not be
	// changed; a slow Offer holds the command up.
	Offer func(subject string, expected uint64, before any)
	// Bulk, when set, is told when each batch request starts and ends, with the sequence it
	// stored up to, so that the followers it holds yield to a bulk load (events.BulkLoad).
	Bulk *events.BulkLoad
}

func (o Options) withDefaults() Options {
	if o.Queue == "" {
		o.Queue = QueueGroup
	}
	if o.Timeout <= 0 {
		o.Timeout = 9 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 200_000
		if o.StateDir != "" {
			o.CacheSize = 20_000
		}
	}
	if o.SnapshotAfter == 0 {
		o.SnapshotAfter = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Self == "" {
		o.Self = "acld"
	}
	return o
}

// Service answers commands on acl.commands.> (SPEC sections 5 and 6).
type Service struct {
	nc    *nats.Conn
	store *events.Store
	opts  Options
	cache *cache
	own   ownWrites
	// echo: the invalidation subscription gets the instance's own appends back (see noEcho),
	// so it must recognize them (own).
	echo    bool
	metrics *metrics
	pipes   pipes // the order of pipelined batches (batch_pipe.go)

	mu      sync.Mutex
	subs    []*nats.Subscription
	cancel  context.CancelFunc
	slots   chan struct{}
	working sync.WaitGroup
	// work hands a command to an idle worker; stop, closed by Close, lets idle workers go.
	work     chan *nats.Msg
	stop     chan struct{}
	stopOnce sync.Once
	started  atomic.Int64 // workers started (tests)
	dropped  int
	// invalidated counts the messages the invalidation subscription took (tests).
	invalidated atomic.Int64
}

// NewService returns a service that reads and appends through store and answers on nc.
func NewService(nc *nats.Conn, store *events.Store, opts Options) *Service {
	opts = opts.withDefaults()
	c := newCache(store, opts.CacheSize, opts.Logger)
	c.follow = opts.Follow
	return &Service{nc: nc, store: store, opts: opts, cache: c,
		own: ownWrites{ids: map[string]struct{}{}}, echo: !noEcho(nc, store), metrics: newMetrics(),
		slots: make(chan struct{}, opts.Concurrency), work: make(chan *nats.Msg), stop: make(chan struct{})}
}

// Start registers the metrics, subscribes to the event subjects (to invalidate cached states
// that other instances change) and then to the command subjects, and returns once the server
// has both subscriptions. Commands are worked on until Close or until ctx ends.
func (s *Service) Start(ctx context.Context) error {
	if err := s.metrics.register(s.opts.Registerer); err != nil {
		return err
	}
	s.cache.loads, s.cache.behind = s.metrics.loads, s.metrics.behind
	// A replica may serve a read before it has a message the leader's consumer already
	// delivered to the spill's follower (see cache.replicated).
	s.cache.replicated = s.store.Replicas() > 1
	ctx, cancel := context.WithCancel(ctx)
	if s.opts.StateDir != "" {
		if err := s.cache.openSpill(ctx, s.opts.StateDir, s.opts.BlockCache); err != nil {
			cancel()
			return err
		}
	}
	if s.opts.SnapshotAfter > 0 {
		// Without the bucket (an external server may not allow creating it) the service works
		// as before: a tenant's first load replays its whole history.
		snaps, err := s.store.OpenSnapshots(ctx, s.opts.SnapshotBucket)
		if err != nil {
			s.opts.Logger.Warn("tenant snapshots off", "err", err)
		} else {
			s.cache.snaps.Store(&snapshotter{snaps: snaps, after: s.opts.SnapshotAfter, logger: s.opts.Logger,
				ctx: ctx, writing: map[string]bool{}})
		}
	}
	inv, err := s.nc.Subscribe(events.Prefix+".>", s.invalidate)
	if err != nil {
		cancel()
		s.cache.closeSpill()
		return fmt.Errorf("commands: subscribe to %s.>: %w", events.Prefix, err)
	}
	// Losing an invalidation means serving stale reads: allow a deep backlog, and reset the
	// cache when messages were dropped anyway (checkDropped).
	_ = inv.SetPendingLimits(1<<20, 512<<20)
	cmds, err := s.nc.QueueSubscribe(SubjectPrefix+".>", s.opts.Queue, func(m *nats.Msg) { s.dispatch(ctx, m) })
	if err != nil {
		cancel()
		s.cache.closeSpill()
		_ = inv.Unsubscribe()
		return fmt.Errorf("commands: subscribe to %s.>: %w", SubjectPrefix, err)
	}
	_ = cmds.SetPendingLimits(1<<20, 512<<20)
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		cancel()
		s.cache.closeSpill()
		_ = inv.Unsubscribe()
		_ = cmds.Unsubscribe()
		return fmt.Errorf("commands: flush subscriptions: %w", err)
	}
	// The invalidations are subscribed to: the spill's follower reads up to the stream's end.
	if err := s.cache.followSpill(ctx); err != nil {
		cancel()
		s.cache.closeSpill()
		_ = inv.Unsubscribe()
		_ = cmds.Unsubscribe()
		return err
	}
	s.mu.Lock()
	s.subs, s.cancel = []*nats.Subscription{inv, cmds}, cancel
	s.mu.Unlock()
	return nil
}

// SpillMetrics are Pebble's figures of the state spill (memtables, tables, compactions), nil
// while it is not open (--command-spill off, not started yet, or closed).
func (s *Service) SpillMetrics() *pebble.Metrics { return s.cache.spillMetrics() }

// DropCache forgets the principal and record states kept in memory (--command-cache), as an
// idle acld does to come back near its footprint after a start; tenants stay. The next command
// on each reads its state from the spill (or the stream, without one), as after an eviction.
func (s *Service) DropCache() { s.cache.drop() }

// Close stops taking commands, waits for those in progress to be answered and for a tenant
// snapshot being written (at most 30 s), and stops.
func (s *Service) Close() {
	s.mu.Lock()
	subs, cancel := s.subs, s.cancel
	s.subs, s.cancel = nil, nil
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.working.Wait()
	if sn := s.cache.snaps.Load(); sn != nil {
		sn.wait() // a snapshot being written is worth finishing: the next start reads it
	}
	if cancel != nil {
		cancel()
	}
	s.cache.closeSpill()
}

// dispatch runs on the subscription's goroutine: it hands the command to an idle worker, or
// starts a worker while fewer than Concurrency run (beyond, the subscription's queue holds
// them until one is free).
func (s *Service) dispatch(ctx context.Context, m *nats.Msg) {
	select {
	case s.work <- m:
		return
	default:
	}
	select {
	case s.work <- m:
	case s.slots <- struct{}{}:
		s.working.Add(1)
		s.started.Add(1)
		go s.worker(ctx, m)
	}
}

// workerIdle is how long a worker waits for its next command before it ends.
const workerIdle = 5 * time.Second

// worker answers m, then the commands dispatch hands it, until none came for workerIdle or the
// service closes. A goroutine per command started every command on a small stack and grew it
// (runtime.newstack and copystack were 1.5 % of acld's CPU under aclbench's commands workload);
// a worker keeps its stack from one command to the next.
func (s *Service) worker(ctx context.Context, m *nats.Msg) {
	defer func() { <-s.slots; s.working.Done() }()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.handle(ctx, m)
		idle.Reset(workerIdle)
		select {
		case m = <-s.work:
		case <-idle.C:
			return
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// handle answers one command.
func (s *Service) handle(ctx context.Context, m *nats.Msg) {
	if tenant, ok := isBatch(m.Subject); ok {
		s.handleBatch(ctx, m, tenant)
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	name := "unknown"
	cmd, err := s.decode(m)
	var res Result
	if err == nil {
		name = cmd.Name()
		res, err = s.Execute(ctx, cmd)
	}
	var reply []byte
	code := "ok"
	if err != nil {
		code = string(aggregates.ErrorCode(err))
		if code == string(aggregates.CodeInternal) {
			s.opts.Logger.Error("command failed", "subject", m.Subject, "err", err)
		}
		reply = encodeError(err)
	} else {
		reply = encodeResult(res)
	}
	// Counted before answering, so that whoever got the answer also sees it counted.
	s.metrics.total.WithLabelValues(metricName(name), code).Inc()
	s.metrics.duration.WithLabelValues(metricName(name)).Observe(time.Since(start).Seconds())
	if m.Reply != "" {
		if err := m.Respond(reply); err != nil {
			s.opts.Logger.Warn("command answer lost", "subject", m.Subject, "err", err)
		}
	}
}

// decode reads a request's command within its caller's identity: who is asking first
// (unauthenticated), then whether it may address the subject's tenant and command, then the
// body, then whether it may name the body's actor (forbidden). The command records the caller
// as its via.
func (s *Service) decode(m *nats.Msg) (aggregates.Command, error) {
	var caller *aggregates.Caller
	if s.opts.Identify != nil {
		c, err := s.opts.Identify(m.Header)
		if err != nil {
			return nil, err
		}
		caller = c
	}
	tenant, name, err := ParseSubject(m.Subject)
	if err != nil {
		return nil, err
	}
	return s.decodeAs(caller, tenant, name, m.Data)
}

// decodeAs reads one command of a known name within its caller's identity (see decode); a
// batch reads each of its commands so.
func (s *Service) decodeAs(caller *aggregates.Caller, tenant, name string, body []byte) (aggregates.Command, error) {
	if err := caller.MayTenantCommand(tenant, name); err != nil {
		err.Op = name
		return nil, err
	}
	cmd, err := decodeBody(tenant, name, body)
	if err != nil {
		return nil, err
	}
	b := cmd.Base()
	if err := caller.MayAct(b.Actor); err != nil {
		err.Op = cmd.Name()
		return nil, err
	}
	b.Via = caller.Via(s.opts.Self)
	return cmd, nil
}

// noEcho reports whether the instance's appends are published on nc (its store's connection)
// and nc was made with nats.NoEcho: its invalidation subscription then never gets them.
func noEcho(nc *nats.Conn, store *events.Store) bool {
	return nc != nil && nc.Opts.NoEcho && store != nil && store.Conn() == nc
}

// invalidate marks a cached state stale when another writer appended to its subject. The
// instance's own appends are recognized by their message ids and skipped: it updated its
// cache itself. On a connection made with nats.NoEcho (acld's), the server does not send them
// back at all: an import's every message then costs the server one delivery fewer, and this
// instance a copy, a header parse and the bookkeeping of its id.
func (s *Service) invalidate(m *nats.Msg) {
	defer s.invalidated.Add(1)
	if s.own.take(m.Header.Get(nats.MsgIdHdr)) {
		return
	}
	s.cache.invalidate(m.Subject, floorOf(m.Header))
}

// floorOf is the lowest sequence a state of a message's subject must be at to include the
// message: one above the subject's sequence its append expected (Nats-Expected-Last-Subject-
// Sequence, 0 for a creation). The stream stores the message only if the subject is at that
// sequence, and refuses it for that only if the subject has a later message, so once the message
// is stored or refused for a conflict, the subject reaches the floor. 0 when the message states
// no expectation: an item of an atomic batch that follows another item of its subject (the
// batch is stored whole or not at all, so the earlier item's floor covers it), or a writer that
// expects nothing (aclbench's fast loader); the invalidation then only marks the state stale.
func floorOf(h nats.Header) uint64 {
	v := h.Get(nats.ExpectedLastSubjSeqHdr)
	if v == "" {
		return 0
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return seq + 1
}

// checkDropped resets the cache when the invalidation subscription dropped messages (a slow
// consumer): some cached states may then be stale without being marked.
func (s *Service) checkDropped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) == 0 {
		return
	}
	n, err := s.subs[0].Dropped()
	if err == nil && n != s.dropped {
		s.dropped = n
		s.cache.reset()
	}
}

// noteOwn records the message id of an append about to be sent, for invalidate to skip it when
// the connection sends it back.
func (s *Service) noteOwn(id string) {
	if s.echo {
		s.own.add(id)
	}
}

// ownWrites are the message ids of this instance's appends whose invalidation has not come
// back yet.
type ownWrites struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// maxOwn bounds the set: ids whose message never came back (a publish that failed before the
// server saw it) must not pile up; forgetting them costs one needless reload each.
const maxOwn = 100_000

func (o *ownWrites) add(id string) {
	o.mu.Lock()
	if len(o.ids) >= maxOwn {
		o.ids = map[string]struct{}{}
	}
	o.ids[id] = struct{}{}
	o.mu.Unlock()
}

func (o *ownWrites) take(id string) bool {
	if id == "" {
		return false
	}
	o.mu.Lock()
	_, ok := o.ids[id]
	delete(o.ids, id)
	o.mu.Unlock()
	return ok
}

// storeError turns an append or load failure into the answer's error.
func storeError(op string, err error) error {
	switch {
	case errors.Is(err, events.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable(op, err)
	}
	return internal(op, err)
}
