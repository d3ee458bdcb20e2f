package events

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultSync is the fsync interval of the embedded server when ServerConfig.Sync is "".
//
// Why 100ms: JetStream writes every acknowledged message to the OS page cache at once, so a
// process crash (kill -9) loses nothing whatever the setting; only a machine crash or power loss
// can lose what was not yet fsynced. nats-server's own default fsyncs every 2 minutes, which may
// lose up to 2 minutes of acknowledged commands on a power cut. SyncAlways fsyncs every message
// with no group commit and caps appends near 5k/s on this machine class whatever the
// concurrency. A 100 ms interval bounds the loss to the last 100 ms and keeps appends near the
// 2-minute figure (see the Performance paragraph of doc.go for the measurements).
const DefaultSync = "100ms"

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	Dir    string // JetStream store directory
	Listen string // "host:port"; "" = no listener (in-process only); port -1 = random
	Sync   string // "always" or a duration such as "100ms" (fsync interval); "" = default
	// Name is the server name; "" = "acl". JetStream keeps it in the store, so keep it stable.
	Name string
	// ReadyTimeout bounds the wait for the server to accept connections; 0 = 10s.
	ReadyTimeout time.Duration
	// Owner is the only identity that may write the stream (acld); nil = a fresh one that
	// nobody holds, for a server whose stream nobody will write.
	Owner *Owner
	// Callers are the identities that may connect (see Layout); nil = the anonymous caller
	// only, which every connection without credentials is.
	Callers []Caller
	// TLS, when set, is required of every client of the listener (in-process connections do
	// not use it).
	TLS *tls.Config
}

// ErrConfig is returned for a server or store configuration that cannot be used.
var ErrConfig = errors.New("events: bad configuration")

// ParseSync reads a Sync setting: "always", a positive duration, or "" for DefaultSync. It
// returns the fsync interval, or always=true.
func ParseSync(s string) (interval time.Duration, always bool, err error) {
	if s == "" {
		s = DefaultSync
	}
	if strings.EqualFold(s, "always") {
		return 0, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%w: sync %q: want \"always\" or a positive duration such as 100ms", ErrConfig, s)
	}
	return d, false, nil
}

// serverOptions turns a ServerConfig into nats-server options.
func serverOptions(cfg ServerConfig) (*server.Options, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: server without a store directory", ErrConfig)
	}
	interval, always, err := ParseSync(cfg.Sync)
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = "acl"
	}
	opts := &server.Options{}
	owner := cfg.Owner
	if owner == nil {
		if owner, err = NewOwner(); err != nil {
			return nil, err
		}
	}
	layout := Layout{Owner: owner.PublicKey(), Callers: cfg.Callers}
	if err := layout.Validate(); err != nil {
		return nil, err
	}
	if err := opts.ProcessConfigString(layout.Config()); err != nil {
		return nil, fmt.Errorf("%w: accounts: %v", ErrConfig, err)
	}
	// ProcessConfigString resets what it does not set; set ours again.
	opts.ServerName, opts.JetStream, opts.StoreDir = name, true, cfg.Dir
	opts.SyncAlways, opts.SyncInterval = always, interval
	opts.NoSigs, opts.NoLog, opts.DontListen = true, true, cfg.Listen == ""
	if cfg.TLS != nil {
		opts.TLSConfig, opts.TLS, opts.TLSVerify = cfg.TLS, true, cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 2
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("%w: listen %q: %v", ErrConfig, cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < -1 || p > 65535 {
			return nil, fmt.Errorf("%w: listen %q: bad port", ErrConfig, cfg.Listen)
		}
		opts.Host, opts.Port = host, p
	}
	return opts, nil
}

// StartServer starts an embedded nats-server with JetStream and waits until it is ready.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	if err := moveStoreAccount(cfg.Dir); err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: new nats server in %s: %w", cfg.Dir, err)
	}
	go s.Start()
	wait := cfg.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !s.ReadyForConnections(wait) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: nats server in %s not ready after %v: %w", cfg.Dir, wait, ErrUnavailable)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: nats server in %s started without JetStream: %w", cfg.Dir, ErrUnavailable)
	}
	return s, nil
}

// ConnectInProcess connects to an embedded server without a socket, as the anonymous caller
// unless opts carry credentials (Owner.Option for the owner). The connection does not
// reconnect (a server that shut down never comes back as the same object), so it closes with
// its server and whatever uses it fails with ErrUnavailable instead of waiting; opts may
// override that.
func ConnectInProcess(s *server.Server, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(s), nats.Name("acl-inprocess"), nats.NoReconnect()}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("events: connect in process: %w", err)
	}
	return nc, nil
}
