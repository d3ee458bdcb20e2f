package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Options configures a Service. Zero values take the defaults.
type Options struct {
	// Dir holds replay's own data: audit/ (the audit index), checkpoints/ (read-model
	// checkpoints), events/ (the stream's messages as_of reads, eventlog.go), states/ (every
	// version of the states the checkpoints hold, projections.Versions) and scratch/
	// (throw-away copies for as_of). Required.
	Dir string
	// CheckpointEvery: a checkpoint of the read model every N applied events; default 2000.
	// An as_of answer replays at most about N events.
	CheckpointEvery uint64
	// DenseCheckpoints: how many checkpoints stay at the full density of CheckpointEvery
	// before, as they age, the spacing doubles each time their age doubles (grid.go); default:
	// all of them. Consecutive checkpoints share their tables, so fewer save little disk
	// (their manifests) and make as_of far back replay more.
	DenseCheckpoints uint64
	// CheckpointBudget bounds the disk the checkpoints take beyond the live model's files, in
	// bytes: past it the grid's spacing doubles (checkpoints.coarsen). 0: what the live model
	// takes, budgetModels times that when the chain is rebased (RebaseTables); negative: no
	// bound.
	CheckpointBudget int64
	// RebaseTables: the chain's head is rebased (compacted into a few tables, the model as of
	// that checkpoint) at the first checkpoint where it holds more level-0 tables than this,
	// one per flush since the last rebase (checkpoint_loop.go); default 512. Every checkpoint
	// so links at most about this many tables, whatever the history's length: the tables an
	// open base reads, its memory and its answers' cost stay bounded. Each rebase writes the
	// model once more (zstd): fewer tables cost more disk. Negative: never rebase.
	RebaseTables int
	// CachedStates: as_of states kept open for the next query at the same moment; default 4.
	CachedStates int
	// OpenCheckpoints: checkpoints kept open (read-only) for as_of states to start from, the
	// most recently used; default 8. Each holds its tables open; they share one block cache of
	// 32 MiB.
	OpenCheckpoints int
	// Wait bounds min_seq and as_of waits for what is not applied yet; default 2 s.
	Wait time.Duration
	// Engine configures the engines that answer over as_of copies.
	Engine projections.EngineOptions
	// Bulk, when set, is told of each history or as_of wait for what is not applied yet, so that
	// followers yielding to a bulk load go on until they have applied it (events.BulkLoad.Want;
	// acld's Follow yields to it).
	Bulk *events.BulkLoad
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
	// Cache, when set, is the Pebble block cache of the audit index, the chain's head and the
	// open checkpoints, shared with the caller's other stores (acld's --cache-mb bounds all of
	// its block caches together); the caller keeps its reference until Close. Nil: each has its
	// own, of 16, 64 and 32 MiB.
	Cache *pebble.Cache
	// Follow, when set, is what the audit index follows the stream through (acld: the fanout it
	// shares with the projector and the command spill); nil: a consumer of its own.
	Follow Follower
}

// tenantCacheBytes bounds the stored bytes of the tenants the as_of engines share (a tenant of
// the compare shape, with its 2,250 units and 5,000 clients, stores about 0.13 MB at 10^6
// records, and takes about 3.5 times that decoded). 1 MB keeps the few versions most moments
// read; with 4 MB, answers at moments of the load (where each unit defined is a new version)
// filled it with 29 versions, 14 MB of heap (the round's review).
const tenantCacheBytes = 1 << 20

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("replay: Options.Dir is required")
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 2000
	}
	if o.DenseCheckpoints == 0 {
		o.DenseCheckpoints = allDense
	}
	if o.RebaseTables == 0 {
		o.RebaseTables = defaultRebaseTables
	}
	if o.CachedStates <= 0 {
		o.CachedStates = 4
	}
	if o.OpenCheckpoints <= 0 {
		o.OpenCheckpoints = 8
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Second
	}
	if o.Engine.WaitBound <= 0 {
		o.Engine.WaitBound = o.Wait
	}
	if o.Engine.CachedStates <= 0 {
		o.Engine.CachedStates = 10_000
	}
	if o.Engine.Tenants == nil {
		// The as_of engines share their decoded tenants: most moments see a tenant as one of
		// a few versions (its policy changes rarely), and decoding it was ~15 % of an answer.
		o.Engine.Tenants = projections.NewTenantCache(tenantCacheBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// budgetModels is the default CheckpointBudget in live models when the chain is rebased: the
// chain's flushes take about one (the data written once, zstd), and each rebase writes one
// more (RebaseTables) that the checkpoints after it link; a rebased chain keeps each
// segment's first and last checkpoint (checkpoints.segmentEnds), so thinning frees little of
// it. Without rebases, one.
const budgetModels = 3

// defaultRebaseTables is the default RebaseTables. At 10^6 records and a flush every 1,000
// events: a rebase every 512,000 events (two over the 1.41 million events), the second
// writing the model again (~90 MB zstd); a base reads at most ~514 tables instead of 1,411
// (Pebble's level-0 sublevels grow with tables x intervals, about their square: ~(514/1411)^2
// of the 21-49 MB measured), and under Pebble's file cache of 1,000 tables a DB. With 256 a
// 10^6 chain rebased five times and the rebases took 300 MB beside 155 MB of flushes.
const defaultRebaseTables = 512

// allDense is the default DenseCheckpoints: no thinning by age (every*allDense stays far from
// overflowing).
const allDense = 1 << 32

// Service is the audit and time-travel side of acld: the history and diff queries, the AsOf
// hook of the query servers, and the read-model checkpoints as_of starts from.
type Service struct {
	store  *events.Store
	db     *projections.DB
	proj   *projections.Projector
	opts   Options
	log    *slog.Logger
	audit  *Audit
	elog   *eventLog // the stream's messages as_of reads (eventlog.go)
	getter *messageGetter
	ckpts  *checkpoints
	head   *chainHead // the filler's open copy of the chain's newest state (fillLoop's own)
	mirror *chainMirror
	// unmirror stops the projector handing its batches to mirror
	unmirror func()
	states   *stateCache
	bases    *bases   // the checkpoints as_of states are overlays on
	review   struct { // the count memo of the review being walked (review.go)
		mu     sync.Mutex
		tenant string
		seq    uint64
		memo   *projections.CountMemo
	}

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// rebases counts the chain's rebases (checkpoint)
	rebases atomic.Uint64
	// builtFrom counts the as_of states built with their events from the log and the stream.
	builtFrom struct{ log, stream atomic.Uint64 }
	// statesFrom counts the as_of states built whose base's states were read from the state
	// versions, and from the base's tables (the versions had not reached the base yet).
	statesFrom struct{ versions, tables atomic.Uint64 }
}

// New opens replay's data in opts.Dir. store is the event store, db the live read model and
// proj the projector feeding it (the checkpoints are taken from db as proj advances).
func New(store *events.Store, db *projections.DB, proj *projections.Projector, opts Options) (*Service, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(store.Conn())
	if err != nil {
		return nil, fmt.Errorf("replay: jetstream: %w", err)
	}
	// Scratch copies do not outlive the process that made them: a crash leaves some behind.
	if err := os.RemoveAll(filepath.Join(opts.Dir, "scratch")); err != nil {
		return nil, fmt.Errorf("replay: clear scratch: %w", err)
	}
	for _, d := range []string{"checkpoints", "scratch"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	ckpts, err := openCheckpoints(filepath.Join(opts.Dir, "checkpoints"), grid{every: opts.CheckpointEvery, dense: opts.DenseCheckpoints}, opts.CheckpointBudget)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.CheckpointBudget > 0:
		ckpts.budget = func() int64 { return opts.CheckpointBudget }
	case opts.CheckpointBudget == 0 && db != nil:
		ckpts.live = db.Dir()
		models := int64(1)
		if opts.RebaseTables > 0 {
			models = budgetModels
		}
		ckpts.budget = func() int64 { return models * dirSize(db.Dir()) }
	}
	audit, err := openAudit(filepath.Join(opts.Dir, "audit"), false, opts.Cache)
	if err != nil {
		return nil, err
	}
	elog, err := openEventLog(filepath.Join(opts.Dir, "events"), opts.Cache)
	if err != nil {
		audit.Close()
		return nil, err
	}
	vs, err := projections.OpenVersions(filepath.Join(opts.Dir, "states"), opts.Cache)
	if err != nil {
		elog.close()
		audit.Close()
		return nil, err
	}
	s := &Service{store: store, db: db, proj: proj, opts: opts, log: opts.Logger, audit: audit, elog: elog,
		getter: newMessageGetter(js, store.Name()), ckpts: ckpts, mirror: newChainMirror(mirrorQueueBytes)}
	s.states = newStateCache(opts.CachedStates)
	s.bases = newBases(ckpts, filepath.Join(opts.Dir, "scratch"), opts.OpenCheckpoints, opts.Cache)
	s.bases.versions, s.bases.log = vs, opts.Logger
	return s, nil
}

// Audit is the service's audit index.
func (s *Service) Audit() *Audit { return s.audit }

// EventLogMetrics are Pebble's figures of the event log.
func (s *Service) EventLogMetrics() *pebble.Metrics { return s.elog.pb.Metrics() }

// VersionsMetrics are Pebble's figures of the as_of state versions.
func (s *Service) VersionsMetrics() *pebble.Metrics { return s.bases.versions.Metrics() }

// Start follows the stream into the audit index and the event log and takes the read-model
// checkpoints, until ctx ends or Close.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	if s.proj != nil {
		s.unmirror = s.proj.AddMirror(s.opts.CheckpointEvery, s.mirror.put)
	}
	var follow Follower = s.store
	if s.opts.Follow != nil {
		follow = s.opts.Follow
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.audit.Run(ctx, follow, s.log)
	}()
	go func() {
		defer s.wg.Done()
		s.checkpointLoop(ctx)
	}()
	if logFollows {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.elog.run(ctx, follow, s.log)
		}()
	}
}

// Close stops the background work, closes the cached as_of states and the audit index.
func (s *Service) Close() error {
	if s.unmirror != nil {
		s.unmirror()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.states.close()
	s.bases.close()
	return errors.Join(s.bases.versions.Close(), s.elog.close(), s.audit.Close())
}

// MemtableReserve is what the memtables of the service's stores that write (the audit index and
// the chain's head) take from a cache given as Options.Cache (projections.MemtableReserve): the
// caller adds it to the cache's size.
func MemtableReserve() int64 {
	return projections.MemtableReserve(auditMemtable) + projections.MemtableReserve(logMemtable) +
		projections.VersionsMemtableReserve() + ChainHeadMemtableReserve()
}

// ChainHeadMemtableReserve is the chain head's part of MemtableReserve: its memtables are not
// visible to the caller (the head is reopened as it moves), so a caller that follows the
// others' current sizes counts this part as always in use.
func ChainHeadMemtableReserve() int64 {
	return projections.MemtableReserve(fillDB.MemTableBytes)
}

// basesCache is the block cache the open checkpoints share.
const basesCache = 32 << 20

// dirSize is the bytes of the files directly in dir (0 when it cannot be read).
func dirSize(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
