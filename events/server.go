package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
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
	// Protect names the streams that no client of this server may delete, purge, update, or
	// delete a message of; nil = [ACL_EVENTS]. DenyDelete and DenyPurge only cover messages:
	// JetStream lets any client delete a whole stream or raise its limits, so the server's
	// only user (the one clients without credentials get) is denied those API subjects.
	Protect []string
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
	opts := &server.Options{
		ServerName:   name,
		JetStream:    true,
		StoreDir:     cfg.Dir,
		SyncAlways:   always,
		SyncInterval: interval,
		NoSigs:       true,
		NoLog:        true,
		DontListen:   cfg.Listen == "",
	}
	protect := cfg.Protect
	if protect == nil {
		protect = []string{DefaultStream}
	}
	opts.Users = []*server.User{{
		Username:    appUser,
		Password:    nuid.Next(), // random: nobody logs in as it, clients get it by default
		Permissions: appPermissions(protect),
	}}
	opts.NoAuthUser = appUser
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

// appUser is the user every client of the embedded server is.
const appUser = "acl"

// appPermissions allow everything but the JetStream API calls that would lose history.
func appPermissions(streams []string) *server.Permissions {
	var deny []string
	for _, st := range streams {
		for _, op := range []string{"DELETE", "PURGE", "UPDATE", "MSG.DELETE"} {
			deny = append(deny, "$JS.API.STREAM."+op+"."+st)
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}},
	}
}

// StartServer starts an embedded nats-server with JetStream and waits until it is ready.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	opts, err := serverOptions(cfg)
	if err != nil {
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

// ConnectInProcess connects to an embedded server without a socket. The connection does not
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
