package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/acl-es/acl/projections"
)

// Config is everything acld can be told on its command line (SPEC section 6 names the flags that
// operators and scripts rely on).
type Config struct {
	DataDir      string
	HTTPListen   string
	NATSListen   string // embedded server's listener; "" = in-process only
	NATSURL      string // use an existing server or cluster instead of the embedded one
	NATSCreds    string
	NATSNkey     string // seed file of the store owner's nkey, for --nats-url
	NATSUser     string
	NATSPassword string
	Auth         string // identity file; "" = no identities, loopback only
	Insecure     bool   // serve non-loopback listeners without --auth
	TLSCert      string // certificate and key for the HTTP and NATS listeners
	TLSKey       string
	Sync         string // "always" or an fsync interval such as "100ms"
	Replicas     int
	// StreamCompression is "s2" or "none", for a stream this start creates (events.StoreConfig.Uncompressed).
	StreamCompression string
	Demo              bool
	// NoChangeFeed: this instance publishes no change feed (SPEC section 8). The feed costs
	// command throughput (README, performance); with several instances, one is enough to
	// publish it, the others may be started without.
	NoChangeFeed bool
	// ChangeFeedCPU: the share of one core the change feed may spend (projections.FeedOptions.CPU).
	ChangeFeedCPU float64
	QueryWait     time.Duration // bound of min_seq / as_of waits
	StoreWait     time.Duration // how long start-up waits for the event store
	ShutdownWait  time.Duration // how long a stop may take before acld exits anyway
	CacheMB       int           // Pebble block cache
	MemtableMB    int
	CheckpointN   uint64 // as_of: a Pebble checkpoint every N events
	// CheckpointsDense: how many of the newest checkpoints stay CheckpointN apart; older ones
	// thin out with age (replay.Options.DenseCheckpoints).
	CheckpointsDense uint64
	// CheckpointBudgetMB bounds the disk of the as_of checkpoints beyond the live model's
	// files (replay.Options.CheckpointBudget): 0 = as much as the read model (three times when rebased), -1 = no bound.
	CheckpointBudgetMB int64
	// CheckpointRebaseTables: the as_of chain is rebased past this many level-0 tables
	// (replay.Options.RebaseTables; 0: replay's default, -1: never).
	CheckpointRebaseTables int
	LogLevel               string
	// CommandCache is how many aggregate states the command service keeps in memory
	// (commands.Options.CacheSize).
	CommandCache int
	// QueryCache is how many decoded principal and record states the query engine keeps
	// (projections.EngineOptions.CachedStates).
	QueryCache int
	// CommandSpill keeps the other principal and record states on disk, in DataDir/commands
	// (commands.Options.StateDir).
	CommandSpill bool
	// Procs is how many goroutines run at once (GOMAXPROCS); 0 = twice the CPUs acld may use.
	// GOMAXPROCS in the environment takes precedence.
	Procs int
	// MemoryLimitMB is the Go runtime's soft memory limit (debug.SetMemoryLimit) in MiB; 0 = none.
	// GOMEMLIMIT in the environment takes precedence.
	MemoryLimitMB int
	// IdleTrim is how often acld checks whether it is idle and, if so, returns free memory to
	// the system (trim.go); 0 = never.
	IdleTrim time.Duration
	// Pprof is the address of a listener serving /debug/pprof (heap and CPU profiles, for an
	// operator finding where memory goes); "" = none. It is always loopback only: profiles show
	// internals and a CPU profile costs the server.
	Pprof string

	// BulkLag: while a bulk load that asks for it runs (batch requests marked load: aclctl
	// import --hold-read-side), the read model's projector and the audit index hold until this
	// many messages behind (events.BulkLoad.MaxLag); 0: they never hold.
	BulkLag uint64
}

// flagHelp: --help was asked and answered.
var flagHelp = flag.ErrHelp

// DefaultConfig is what `go run ./cmd/acld` uses.
func DefaultConfig() Config {
	return Config{
		DataDir:           "./data",
		HTTPListen:        "127.0.0.1:8080",
		NATSListen:        "127.0.0.1:4222",
		Sync:              "100ms",
		Replicas:          1,
		StreamCompression: "s2",
		QueryWait:         2 * time.Second,
		BulkLag:           500_000,
		StoreWait:         2 * time.Minute,
		ShutdownWait:      30 * time.Second,
		CacheMB:           64,
		MemtableMB:        16,
		CommandCache:      20_000,
		QueryCache:        100_000,
		CommandSpill:      true,
		MemoryLimitMB:     0,
		IdleTrim:          5 * time.Second,
		CheckpointN:       1000,
		CheckpointsDense:  0,
		ChangeFeedCPU:     projections.DefaultFeedCPU,
		LogLevel:          "info",
	}
}

// ParseFlags reads the command line into a Config.
func ParseFlags(args []string) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("acld", flag.ContinueOnError)
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (JetStream store and read models)")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "HTTP address of the query API, /healthz, /readyz and /metrics")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "address of the embedded NATS server (loopback by default; \"\" = in-process only)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "use an existing NATS server or cluster instead of the embedded one")
	fs.StringVar(&c.NATSCreds, "nats-creds", c.NATSCreds, "credentials file for --nats-url")
	fs.StringVar(&c.NATSNkey, "nats-nkey", c.NATSNkey, "nkey seed file of acld's user for --nats-url (the store account's only user; see `acld nats-config`)")
	fs.StringVar(&c.Auth, "auth", c.Auth, "identity file: the services that may call acld, their credentials and rights (README, Security); without it acld listens on loopback only")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "allow non-loopback listeners without --auth: anyone who reaches them may do anything (warned at every start)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate for the HTTP and NATS listeners (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&c.NATSUser, "nats-user", c.NATSUser, "user name for --nats-url")
	fs.StringVar(&c.NATSPassword, "nats-password", c.NATSPassword, "password for --nats-url")
	fs.StringVar(&c.Sync, "sync", c.Sync, "embedded store durability: \"always\" (fsync every message) or an fsync interval such as 100ms")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "replicas of the ACL_EVENTS stream (3 in a cluster)")
	fs.StringVar(&c.StreamCompression, "stream-compression", c.StreamCompression, "compression of the ACL_EVENTS stream when this start creates it, s2 or none (an existing stream keeps its own): s2 stores the events in about a third of the disk; none answers as_of at 10^6 records some 10-15 % faster (each answer reads a message block, which s2 decompresses whole)")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "create the demo tenant (preset trackops) if it does not exist")
	fs.Float64Var(&c.ChangeFeedCPU, "change-feed-cpu", c.ChangeFeedCPU, "share of one core the change feed may spend deriving changes (past it they are announced as gaps; -1: no bound)")
	fs.BoolVar(&c.NoChangeFeed, "no-change-feed", c.NoChangeFeed, "publish no change feed from this instance (acl.changes.>; another instance may)")
	fs.DurationVar(&c.StoreWait, "store-wait", c.StoreWait, "how long start-up waits for NATS and the event stream (a cluster electing its leader, a server starting) before it fails")
	fs.DurationVar(&c.ShutdownWait, "shutdown-wait", c.ShutdownWait, "on SIGTERM, how long acld may answer commands in flight and flush before it exits anyway")
	fs.DurationVar(&c.QueryWait, "query-wait", c.QueryWait, "how long min_seq and as_of wait for the read model before not_caught_up")
	fs.Uint64Var(&c.BulkLag, "bulk-lag", c.BulkLag, "while a bulk load that asks for it runs (aclctl import --hold-read-side), the read model, the audit index and the change feed follow the stream at most this many messages behind, for every tenant, and catch up after it in full batches; a query with min_seq gets them going at once but may answer not_caught_up meanwhile (0: nothing holds them)")
	// 64 MiB, measured against 128 and 256 at 10^6 records (aclbench check, the 2-core machine):
	// once warm, checks read blocks for 4-6% of their CPU at every size (hot facts are served
	// from the decoded-state cache), and only the first seconds after a start gain (block reads
	// 24% of CPU at 64, 19% at 256). Every MiB counts in RSS once filled, and the memory aim at
	// 10^6 records is 200 MB for the whole process.
	fs.IntVar(&c.CacheMB, "cache-mb", c.CacheMB, "Pebble block cache in MiB, shared by all of acld's stores (read model, audit index, as_of checkpoints, command spill), beside their memtables: at most this much RSS of blocks for all of them (an import of 2*10^5 records missed 156k block reads with 64 and 161k with 96; once warm, checks at 10^6 records read blocks for ~5% of their CPU with 64, 128 or 256 for the read model alike)")
	fs.IntVar(&c.MemtableMB, "memtable-mb", c.MemtableMB, "the read model's Pebble memtable in MiB; two of them (the one written and the one kept for reuse) stay in RSS (16: an import of 2*10^5 records then took 83 MB of disk and 33 MB of memtables, against 132 and 67 with 32, for 94 MB of compactions against 38)")
	fs.Uint64Var(&c.CheckpointN, "checkpoint-every", c.CheckpointN, "as_of: keep a read-model checkpoint every N events: an answer replays up to N events after its checkpoint (at 10^6 records, p99 27-28 ms with 1000 against 55-58 with 2000, at the same import time; the disk budget bounds the checkpoints either way)")
	// Consecutive checkpoints share their tables (replay's filler never compacts), so a thinner
	// grid saves little disk: by default every checkpoint stays, and an answer replays fewer
	// than --checkpoint-every events (~30 µs each). The budget still thins them when it must.
	fs.Uint64Var(&c.CheckpointsDense, "checkpoints-dense", c.CheckpointsDense, "as_of: how many of the newest checkpoints stay --checkpoint-every apart; older ones double their spacing with age (0: all stay; fewer: less disk, slower as_of on older moments)")
	fs.IntVar(&c.CommandCache, "command-cache", c.CommandCache, "aggregate states the command service keeps in memory (about 1.3 KB each; the others are read from the spill, see --command-spill)")
	fs.IntVar(&c.QueryCache, "query-cache", c.QueryCache, "decoded principal and record states the query engine keeps in memory for checks (about 0.8 KB each at 10^6 records: 80 MB of heap when full; the others are read from the read model and decoded again)")
	fs.BoolVar(&c.CommandSpill, "command-spill", c.CommandSpill, "keep the principal and record states not in memory, and the older command ids of busy aggregates, on disk (DATA/commands, kept across restarts); off, one not in memory costs a read of its subject, which makes nats-server load and keep its 8 MB message block")
	// Off by default, measured (README, round 4): a limit below the live heap makes the
	// collector run without pause, and with 128 MiB checks fell from 12k/s to 1.1k/s and
	// commands on records not in the command cache to a few per second, the live heap being
	// over it (nats-server keeps each 8 MB message block it reads for 10 s). It is a tool for an
	// operator who knows the live heap of their data (see --pprof), not a default.
	fs.DurationVar(&c.IdleTrim, "idle-trim", c.IdleTrim, "every this long, if acld allocated almost nothing since the last time, return its free memory (Go's heap, nats-server's idle message blocks, the C heap Pebble allocates in) to the system: six ticks in a row, 60 s into the idle period after dropping acld's caches of states and Pebble's blocks (read again as after a restart), and once more 150 s into it, when nats-server has dropped what the writes left (0: never)")
	fs.IntVar(&c.Procs, "procs", c.Procs, "how many goroutines run at once, Go's GOMAXPROCS (0: twice the CPUs acld may use, so that a query is not queued behind background work; GOMAXPROCS in the environment wins)")
	fs.IntVar(&c.MemoryLimitMB, "memory-limit", c.MemoryLimitMB, "soft limit of the Go heap in MiB (0: none; GOMEMLIMIT in the environment wins); set it well above the live heap, or the collector runs without pause")
	fs.StringVar(&c.Pprof, "pprof", c.Pprof, "serve /debug/pprof on this loopback address (e.g. 127.0.0.1:6060); off by default")
	fs.Int64Var(&c.CheckpointBudgetMB, "checkpoint-budget-mb", c.CheckpointBudgetMB, "as_of: disk the checkpoints may take beyond the read model's own files, MiB (0: as much as the read model, three times that when the chain is rebased; -1: no bound); past it their spacing doubles (as_of replays more events)")
	fs.IntVar(&c.CheckpointRebaseTables, "checkpoint-rebase-tables", c.CheckpointRebaseTables, "as_of: rebase the checkpoints' chain (compact it into the model at a checkpoint) once it holds more than this many tables since the last rebase, so that an as_of base reads at most about this many whatever the history's length (0: 512; -1: never); each rebase writes the read model once more (zstd)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "acld: the access-control server (embedded NATS by default).\n\nUsage: acld [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nTools for the identity file (--auth) and an external NATS server:\n%s", toolsUsage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, flagHelp
		}
		return c, err
	}
	if c.Replicas < 1 {
		return c, &configError{errors.New("--replicas must be at least 1")}
	}
	if c.QueryCache < 1 {
		return c, &configError{errors.New("--query-cache must be at least 1")}
	}
	if c.StreamCompression != "s2" && c.StreamCompression != "none" {
		return c, &configError{fmt.Errorf("--stream-compression %q: s2 or none", c.StreamCompression)}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, &configError{errors.New("--tls-cert and --tls-key go together")}
	}
	if c.Pprof != "" && !loopback(c.Pprof) {
		return c, &configError{fmt.Errorf("--pprof %s is not a loopback address: profiles show the server's internals to whoever reaches them", c.Pprof)}
	}
	if err := c.checkListeners(); err != nil {
		return c, &configError{err}
	}
	return c, nil
}

// configError is a command line the flags parsed but that cannot be used.
type configError struct{ error }

func (e *configError) Unwrap() error { return e.error }

// checkListeners: without --auth, acld answers anyone who reaches it with anything, so it
// listens on loopback only unless --insecure says otherwise (SPEC section 5, "Callers").
func (c Config) checkListeners() error {
	if c.Auth != "" || c.Insecure {
		return nil
	}
	if c.NATSURL != "" {
		// An external server is reached by others than this host: without identities every
		// one of them would be the anonymous caller, allowed everything.
		return fmt.Errorf("--nats-url without --auth: every client of that server could send any command as any actor, system included; " +
			"give --auth FILE with the accounts of acld nats-config (README, Security), or accept the risk with --insecure")
	}
	for _, l := range []struct{ flag, addr string }{{"--http-listen", c.HTTPListen}, {"--nats-listen", c.NATSListen}} {
		if l.addr == "" {
			continue
		}
		if !loopback(l.addr) {
			return fmt.Errorf("%s %s is not a loopback address: without --auth anyone who reaches it may do anything; "+
				"give --auth FILE (README, Security), listen on 127.0.0.1, or accept the risk with --insecure", l.flag, l.addr)
		}
	}
	return nil
}

// loopback says whether a listen address accepts only local connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return loopbackName(host)
}
