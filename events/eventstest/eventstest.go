package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
)

// Env is a running server, a connection to it and the store on it.
type Env struct {
	Server *server.Server
	Owner  *events.Owner // the store's only writer; Conn is its connection
	Conn   *nats.Conn
	Store  *events.Store
	Dir    string

	serverCfg events.ServerConfig
	storeCfg  events.StoreConfig
}

// Start starts a server with the default configuration (but Sync, see testSync) in a fresh
// t.TempDir() and opens the store ACL_EVENTS on it.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, events.ServerConfig{}, events.StoreConfig{})
}

// testSync is the fsync interval of a test's server when sc.Sync is "". Not events.DefaultSync
// (100ms) because of a data race in nats-server 2.15.3 that the race detector reports: a new
// file store assigns its sync timer without its lock (fileStore.setSyncTimer from
// newFileStoreWithCreatedAndMode), and a timer that fires before the assignment (after half
// the interval at the earliest: 50 ms) sets one itself under the lock. On a loaded machine with
// the race detector a stream creation can stall that long (seen once in .ci/run at load 24,
// TestHistoryErrors). With 1s the creating goroutine would have to stall half a second. Tests
// lose nothing by it: none cuts the power, and a kill keeps what the OS has.
const testSync = "1s"

// StartWith is Start with configurations; sc.Dir "" means a fresh t.TempDir(), sc.Sync ""
// testSync.
func StartWith(t testing.TB, sc events.ServerConfig, st events.StoreConfig) *Env {
	t.Helper()
	if sc.Dir == "" {
		sc.Dir = t.TempDir()
	}
	if sc.Sync == "" {
		sc.Sync = testSync
	}
	e := &Env{Dir: sc.Dir, serverCfg: sc, storeCfg: st}
	e.start(t)
	// Registered after TempDir's own cleanup, so it runs first: the server is down before
	// its directory is removed.
	t.Cleanup(e.stop)
	return e
}

// Restart shuts the server down and starts it again on the same directory, then reconnects
// and reopens the store. Conn and Store are replaced: take them from the Env again after it.
func (e *Env) Restart(t testing.TB) {
	t.Helper()
	e.stop()
	e.start(t)
}

func (e *Env) start(t testing.TB) {
	t.Helper()
	if e.serverCfg.Owner == nil {
		owner, err := events.NewOwner()
		if err != nil {
			t.Fatal(err)
		}
		e.serverCfg.Owner = owner
	}
	e.Owner = e.serverCfg.Owner
	s, err := events.StartServer(e.serverCfg)
	if err != nil {
		t.Fatalf("eventstest: start server: %v", err)
	}
	nc, err := events.ConnectInProcess(s, e.Owner.Option())
	if err != nil {
		s.Shutdown()
		t.Fatalf("eventstest: connect: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := events.OpenStore(ctx, nc, e.storeCfg)
	if err != nil {
		nc.Close()
		s.Shutdown()
		t.Fatalf("eventstest: open store: %v", err)
	}
	// Callers that may read the log make their consumers through the owner, as with acld.
	if _, err := st.ServeReaders(context.Background()); err != nil {
		nc.Close()
		s.Shutdown()
		t.Fatalf("eventstest: serve readers: %v", err)
	}
	e.Server, e.Conn, e.Store = s, nc, st
}

// stop closes the connection and shuts the server down; it may run twice.
// Stop shuts the server down (Restart starts it again).
func (e *Env) Stop() { e.stop() }

func (e *Env) stop() {
	if e.Conn != nil {
		e.Conn.Close()
		e.Conn = nil
	}
	if e.Server != nil {
		e.Server.Shutdown()
		e.Server.WaitForShutdown()
		e.Server = nil
	}
	e.Store = nil
}

// Connect opens another in-process connection to the current server, closed by t.Cleanup: a
// caller's (the anonymous one, unless opts carry credentials; e.Owner.Option() for the owner).
func (e *Env) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := events.ConnectInProcess(e.Server, opts...)
	if err != nil {
		t.Fatalf("eventstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitFor polls cond every few milliseconds until it returns nil or d passes, then fails the
// test with cond's last error. Use it instead of sleeping.
func WaitFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventstest: still failing after %v: %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
