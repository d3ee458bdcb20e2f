package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/acl-es/acl/cmd/acld/console"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// Main is the whole server, so that tests start the real program in-process (see STYLE.md):
// Run starts everything and returns once it serves; Close stops it in reverse order.
type Main struct {
	Config Config
	Log    *slog.Logger

	nats *server.Server // nil with --nats-url
	nc   *nats.Conn     // the store owner's connection: the only writer of the stream
	// cmdNC is the command service's own connection, with nc's credentials: its appends and
	// their acknowledgements do not queue on one connection's lock and read loop behind every
	// follower's deliveries (in an import the batch's publishes waited on nc's lock, handed
	// over to its read loop).
	cmdNC    *nats.Conn
	auth     *Auth       // nil without --auth
	tls      *tls.Config // nil without --tls-cert
	store    *events.Store
	fan      *events.Fanout // the stream consumer the followers share
	registry *prometheus.Registry
	cmds     *commands.Service
	// blocks is the one Pebble block cache of all of acld's stores (--cache-mb): the read
	// model, the audit index, the as_of chain and checkpoints, the command spill. Each had its
	// own (64 + 16 + 64 + 32 + 8 MiB), and a cache fills up to its size whether or not its reads
	// need it; one cache gives the blocks to whichever store reads most.
	blocks  *pebble.Cache
	db      *projections.DB
	proj    *projections.Projector
	engine  *projections.Engine
	feed    *projections.Feed
	replay  *replay.Service
	queries *projections.Server
	http    *http.Server
	pprof   *http.Server // --pprof
	// stopReaders ends the answers to log readers' consumer requests (events.Store.ServeReaders).
	stopReaders func()
	httpAddr    net.Addr
	pprofAddr   net.Addr // --pprof's listener

	serving   atomic.Bool // commands and queries are both served (readiness)
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	// dropMu serializes the idle drop of the caches (dropCaches, on the trimmer's goroutine)
	// with close, which sets dropDone first: a drop never touches a store being closed.
	dropMu   sync.Mutex
	dropDone bool
}

// NewMain returns a Main that Run will start with cfg.
func NewMain(cfg Config, log *slog.Logger) *Main {
	if log == nil {
		log = slog.Default()
	}
	return &Main{Config: cfg, Log: log}
}

// Conn is the server's NATS connection (in-process to the embedded server).
func (m *Main) Conn() *nats.Conn { return m.nc }

// HTTPAddr is the address the HTTP API listens on.
func (m *Main) HTTPAddr() string {
	if m.httpAddr == nil {
		return ""
	}
	return m.httpAddr.String()
}

// Run starts NATS (embedded unless --nats-url), the store, the projector, the audit service, the
// query servers and the command service, then the demo tenant if asked. It returns when all of
// them serve; the read model may still be catching up (/readyz tells).
func (m *Main) Run(ctx context.Context) error {
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c := m.Config
	if err := m.loadSecurity(); err != nil {
		return err
	}
	if err := m.connect(); err != nil {
		return err
	}
	store, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	m.store = store
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Pebble takes each store's memtables out of its block cache: the cache is --cache-mb of
	// blocks plus what the memtables reserve.
	memtables := projections.MemtableReserve(uint64(c.MemtableMB)<<20) + replay.MemtableReserve() + commands.SpillMemtableReserve
	m.blocks = pebble.NewCache(int64(c.CacheMB)<<20 + memtables)
	m.db, err = projections.OpenDB(filepath.Join(c.DataDir, "readmodel"), projections.DBOptions{
		Cache: m.blocks, MemTableBytes: uint64(c.MemtableMB) << 20})
	if err != nil {
		return fmt.Errorf("acld: read model: %w", err)
	}
	// One consumer of the stream, shared by the projector, the audit index and the command
	// state spill once each has caught up (events.Fanout). The projector and the audit index
	// yield to a bulk load (bulk.go).
	m.fan = events.NewFanout(store)
	bulk := m.bulkLoad()
	if m.proj, err = projections.NewProjector(m.db, bulk.Yielding(m.fan)); err != nil {
		return fmt.Errorf("acld: projector: %w", err)
	}
	m.engine = projections.NewEngine(m.db, m.proj, projections.EngineOptions{WaitBound: c.QueryWait, Bulk: bulk, CachedStates: c.QueryCache})
	m.replay, err = replay.New(store, m.db, m.proj, replay.Options{
		Dir: filepath.Join(c.DataDir, "replay"), CheckpointEvery: c.CheckpointN, DenseCheckpoints: c.CheckpointsDense,
		CheckpointBudget: budgetBytes(c.CheckpointBudgetMB), RebaseTables: c.CheckpointRebaseTables, Wait: c.QueryWait, Logger: m.Log, Cache: m.blocks,
		Follow: bulk.Yielding(m.fan), Bulk: bulk})
	if err != nil {
		return fmt.Errorf("acld: replay: %w", err)
	}
	m.registry.MustRegister(m.replay.Collectors()...)
	if !c.NoChangeFeed {
		changes, err := events.OpenChanges(ctx, m.nc, c.Replicas)
		if err != nil {
			return fmt.Errorf("acld: change feed: %w", err)
		}
		o := projections.FeedOptions{Publish: changes.Publish, Flush: changes.Flush, Logger: m.Log, CPU: c.ChangeFeedCPU}
		if m.nats != nil {
			// The embedded server tells who subscribes: the feed derives only what someone
			// would receive. An external server cannot be asked; there it derives everything.
			if o.Listeners, err = events.NewChangesListeners(m.nats); err != nil {
				return fmt.Errorf("acld: change feed: %w", err)
			}
		}
		m.feed = projections.NewFeed(m.engine, o)
		m.proj.SetFeed(m.feed)
		m.registry.MustRegister(m.feed.Collectors()...)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.feed.Run(ctx); err != nil {
				m.Log.Error("change feed stopped", "err", err)
			}
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.proj.Run(ctx); err != nil {
			m.Log.Error("projector stopped", "err", err)
		}
	}()
	m.replay.Start(ctx)
	m.compactAfterCatchUp(ctx)

	if err := m.serveQueries(ctx); err != nil {
		return err
	}
	if err := m.servePprof(); err != nil {
		return err
	}
	spill := ""
	if c.CommandSpill {
		spill = filepath.Join(c.DataDir, "commands")
	}
	cmdStore, err := m.openStoreOn(ctx, m.cmdNC)
	if err != nil {
		return err
	}
	m.cmds = commands.NewService(m.cmdNC, cmdStore, commands.Options{Registerer: m.registry, Logger: m.Log,
		Identify: m.auth.IdentifyNATS, CacheSize: c.CommandCache, StateDir: spill, BlockCache: m.blocks, Effects: m.engine.Effects, Follow: m.fan,
		Bulk: bulk, Offer: m.proj.Offer})
	if err := m.cmds.Start(ctx); err != nil {
		return fmt.Errorf("acld: command service: %w", err)
	}
	stores := []namedStore{{"readmodel", m.db.Metrics}, {"audit", m.replay.Audit().Metrics}, {"spill", m.cmds.SpillMetrics},
		{"events", m.replay.EventLogMetrics}, {"versions", m.replay.VersionsMetrics}}
	m.registry.MustRegister(&storeMetrics{cache: m.blocks, stores: stores})
	m.registry.MustRegister(fanoutMetrics(m.fan)...)
	pad := &cachePad{cache: m.blocks, reserve: memtables, used: func() int64 { return memtableBytes(stores) }}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		pad.run(ctx, replay.ChainHeadMemtableReserve())
	}()
	if c.Demo {
		if err := createDemo(ctx, m.cmds, m.Log); err != nil {
			return fmt.Errorf("acld: demo tenant: %w", err)
		}
	}
	m.serving.Store(true)
	m.Log.Info("acld serving", "http", m.HTTPAddr(), "nats", m.natsURL(), "data", c.DataDir)
	return nil
}

// readiness says what /readyz still waits for beyond the read model's catching up: HTTP
// answers (health, metrics) before the command service listens, and a load balancer must not
// send a service there until both commands and queries are served; it stops being ready as
// soon as a shutdown begins.
func (m *Main) readiness() string {
	if !m.serving.Load() {
		return "not serving: starting or stopping"
	}
	return ""
}

// openStore opens the event stream, waiting for it with backoff up to --store-wait: a cluster
// started with acld elects its leaders for a few seconds, a server may still be starting or
// enabling JetStream. A configuration the store refuses (an unsafe stream) fails at once.
func (m *Main) openStore(ctx context.Context) (*events.Store, error) {
	return m.openStoreOn(ctx, m.nc)
}

// openStoreOn is openStore on one of the connections.
func (m *Main) openStoreOn(ctx context.Context, nc *nats.Conn) (*events.Store, error) {
	bound := m.Config.StoreWait
	if bound <= 0 {
		bound = 2 * time.Minute
	}
	deadline := time.Now().Add(bound)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var store *events.Store
		err := fmt.Errorf("not connected to NATS (%s)", nc.Status())
		if nc.IsConnected() {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			store, err = events.OpenStore(actx, nc, events.StoreConfig{Replicas: m.Config.Replicas, Uncompressed: m.Config.StreamCompression == "none"})
			cancel()
		}
		if err == nil {
			if attempt > 1 {
				m.Log.Info("event store available", "attempts", attempt)
			}
			return store, nil
		}
		if errors.Is(err, events.ErrConfig) || ctx.Err() != nil {
			return nil, fmt.Errorf("acld: event store: %w", err)
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("acld: the event store was not available within --store-wait %v: waited for NATS at %s to connect and serve stream %s with a leader (%d attempts; last: %w)",
				bound, m.natsURL(), events.DefaultStream, attempt, err)
		}
		m.Log.Warn("waiting for the event store", "attempt", attempt, "nats", m.natsURL(), "status", nc.Status().String(), "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("acld: event store: %w", ctx.Err())
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// catchUpCompaction: a catch-up of more events than this is followed by a compaction.
const catchUpCompaction = 100_000

// compactAfterCatchUp compacts the read model once the projector has caught up with a long
// backlog (a first start on a big stream, a rebuild): right after a bulk load every point read
// visits each level-0 table, and checks were measured 7x slower until compaction.
func (m *Main) compactAfterCatchUp(ctx context.Context) {
	start := m.proj.Applied()
	last, err := m.store.LastSeq(ctx)
	if err != nil || last < start+catchUpCompaction {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.proj.WaitFor(ctx, last); err != nil {
			return
		}
		t := time.Now()
		if err := m.db.Compact(ctx); err != nil && ctx.Err() == nil {
			m.Log.Warn("compaction after catch-up", "err", err)
			return
		}
		m.Log.Info("read model compacted after catch-up", "events", last-start, "took", time.Since(t).Round(time.Millisecond))
	}()
}

func (m *Main) natsURL() string {
	if m.Config.NATSURL != "" {
		return redactURLs(m.Config.NATSURL)
	}
	if m.nats != nil && m.Config.NATSListen != "" {
		return m.nats.ClientURL()
	}
	return "in-process"
}

// redactURLs drops the user information of comma-separated URLs, for logs: a password in
// --nats-url must not reach them.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// connect starts the embedded server or connects to --nats-url.
func (m *Main) connect() error {
	c := m.Config
	opts := []nats.Option{nats.Name("acld"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if c.NATSURL != "" {
		if c.NATSNkey != "" {
			seed, err := os.ReadFile(c.NATSNkey)
			if err != nil {
				return fmt.Errorf("acld: --nats-nkey: %w", err)
			}
			owner, err := events.OwnerFromSeed(seed)
			if err != nil {
				return fmt.Errorf("acld: --nats-nkey %s: %w", c.NATSNkey, err)
			}
			opts = append(opts, owner.Option())
		}
		if c.NATSCreds != "" {
			opts = append(opts, nats.UserCredentials(c.NATSCreds))
		}
		if c.NATSUser != "" {
			opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
		}
		// A cluster may still be starting: keep trying, and let openStore bound the wait.
		dial := func(more ...nats.Option) (*nats.Conn, error) {
			nc, err := nats.Connect(c.NATSURL, slices.Concat(opts, []nats.Option{nats.RetryOnFailedConnect(true)}, more)...)
			if err != nil {
				return nil, fmt.Errorf("acld: connect to %s: %w", redactURLs(c.NATSURL), err)
			}
			return nc, nil
		}
		return m.dialBoth(dial)
	}
	// The owner's key is made afresh at every start and never leaves the process: no other
	// connection, whatever it knows, can write the stream.
	owner, err := events.NewOwner()
	if err != nil {
		return err
	}
	var callers []events.Caller // nil: the anonymous caller
	if m.auth != nil {
		callers = m.auth.NATSCallers()
	}
	s, err := events.StartServer(events.ServerConfig{Dir: filepath.Join(c.DataDir, "nats"), Listen: c.NATSListen, Sync: c.Sync,
		Owner: owner, Callers: callers, TLS: m.tls})
	if err != nil {
		return fmt.Errorf("acld: embedded NATS: %w", err)
	}
	m.nats = s
	return m.dialBoth(func(more ...nats.Option) (*nats.Conn, error) {
		return events.ConnectInProcess(s, slices.Concat(opts, []nats.Option{owner.Option()}, more)...)
	})
}

// dialBoth opens the main connection and the command service's.
func (m *Main) dialBoth(dial func(...nats.Option) (*nats.Conn, error)) error {
	nc, err := dial()
	if err != nil {
		return err
	}
	// Without echo: the server does not send the command service its own appends back on its
	// invalidation subscription (commands.Service.invalidate).
	cmdNC, err := dial(nats.Name("acld-commands"), nats.NoEcho())
	if err != nil {
		nc.Close()
		return err
	}
	m.nc, m.cmdNC = nc, cmdNC
	return nil
}

// serveQueries starts the query API over NATS and HTTP (with /healthz, /readyz, /metrics).
func (m *Main) serveQueries(ctx context.Context) error {
	m.queries = projections.NewServer(m.engine, m.proj, projections.ServerOptions{
		Registerer: m.registry, Logger: m.Log, AsOf: m.asOf,
		IdentifyNATS: m.auth.IdentifyNATS, Authenticate: m.auth.AuthenticateHTTP, Ready: m.readiness})
	m.replay.ServeQueries(m.queries)
	if err := m.queries.ServeNATS(ctx, m.nc); err != nil {
		return fmt.Errorf("acld: NATS queries: %w", err)
	}
	// Callers that may read the log make their consumers through acld (pull consumers only).
	stopReaders, err := m.store.ServeReaders(ctx)
	if err != nil {
		return fmt.Errorf("acld: %w", err)
	}
	m.stopReaders = stopReaders
	ln, err := net.Listen("tcp", m.Config.HTTPListen)
	if err != nil {
		return fmt.Errorf("acld: HTTP listen: %w", err)
	}
	m.httpAddr = ln.Addr()
	if m.tls != nil {
		ln = tls.NewListener(ln, m.tls)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	defaultTenant := ""
	if m.Config.Demo {
		defaultTenant = DemoTenant
	}
	mux.Handle("/ui/", console.New(m.queries, console.Options{Authenticate: m.auth.AuthenticateHTTP,
		DefaultTenant: defaultTenant, Logger: m.Log}).Handler())
	mux.Handle("/", m.queries.Handler(m.registry))
	var handler http.Handler = mux
	if m.auth == nil && !m.Config.Insecure {
		handler = loopbackHosts(mux) // loopback only: its Host too (DNS rebinding)
	}
	m.http = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("HTTP server stopped", "err", err)
		}
	}()
	return nil
}

// servePprof serves the runtime's profiles on --pprof, a listener of its own so that they never
// share the query API's address (or its gateway).
func (m *Main) servePprof() error {
	if m.Config.Pprof == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.Pprof)
	if err != nil {
		return fmt.Errorf("acld: --pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Loopback only, its Host too (DNS rebinding): /debug/pprof/cmdline shows the command
	// line, --nats-password included.
	m.pprofAddr = ln.Addr()
	m.pprof = &http.Server{Handler: loopbackHosts(mux), ReadHeaderTimeout: 5 * time.Second}
	m.Log.Info("profiles served", "addr", ln.Addr().String()+"/debug/pprof/")
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.pprof.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("pprof server stopped", "err", err)
		}
	}()
	return nil
}

// loadSecurity reads the identity file and the TLS key pair, and warns of an open door.
func (m *Main) loadSecurity() error {
	c := m.Config
	if c.Auth != "" {
		a, err := LoadAuth(c.Auth, queryNames)
		if err != nil {
			return fmt.Errorf("acld: %w", err)
		}
		m.auth = a
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("acld: --tls-cert/--tls-key: %w", err)
		}
		m.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if c.Auth == "" && c.Insecure {
		m.Log.Warn("--insecure: listening without --auth; anyone who reaches acld may send any command as any actor, system included, and read every tenant",
			"http", c.HTTPListen, "nats", c.NATSListen)
	}
	return nil
}

// Close stops everything in reverse order and flushes the read model. It may be called again.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	m.dropMu.Lock()
	m.dropDone = true // waits for a drop under way; none starts after
	m.dropMu.Unlock()
	m.serving.Store(false)
	var errs []error
	if m.cmds != nil {
		m.cmds.Close()
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	}
	if m.pprof != nil {
		errs = append(errs, m.pprof.Close())
	}
	if m.queries != nil {
		m.queries.Close()
	}
	if m.stopReaders != nil {
		m.stopReaders()
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.feed != nil {
		m.feed.Close()
	}
	if m.replay != nil {
		errs = append(errs, m.replay.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	if m.blocks != nil {
		m.blocks.Unref() // the stores hold their own references while open
		m.blocks = nil
	}
	if m.cmdNC != nil {
		m.cmdNC.Close()
	}
	if m.nc != nil {
		m.nc.Close()
	}
	if m.nats != nil {
		m.nats.Shutdown()
		m.nats.WaitForShutdown()
	}
	return errors.Join(errs...)
}

// budgetBytes turns --checkpoint-budget-mb into replay's CheckpointBudget.
func budgetBytes(mb int64) int64 {
	if mb <= 0 {
		return mb
	}
	return mb << 20
}
