package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// stackConfig says which server the workloads talk to: the parts of acld started in this
// process (the default), or a running acld reached by its NATS URL.
type stackConfig struct {
	dir             string        // data of the in-process server: nats/, readmodel/, replay/
	sync            string        // fsync of the embedded server ("" = events.DefaultSync)
	natsURL         string        // a running server instead of the embedded one
	natsOpts        []nats.Option // its credentials
	cacheMB         int           // Pebble block cache of the read model
	checkpointEvery uint64        // as_of checkpoints
	log             *slog.Logger
}

// stack is the server under test. In-process it is what acld runs (embedded NATS, the store,
// the command service, the projector, the engine, and replay when as_of is measured), started
// part by part so that each workload starts only what it measures.
type stack struct {
	cfg    stackConfig
	srv    *server.Server // nil when remote
	nc     *nats.Conn
	store  *events.Store
	cmds   *commands.Service
	db     *projections.DB
	proj   *projections.Projector
	engine *projections.Engine
	replay *replay.Service
	// The query servers, once a workload asks for HTTP or NATS in-process.
	qsrv    *projections.Server
	hsrv    *http.Server
	httpURL string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*nats.Conn
	owner  *events.Owner // in-process: the store's owner, as acld holds it
}

func (s *stack) remote() bool { return s.cfg.natsURL != "" }

// openStack starts (or connects to) NATS, opens the store and, in-process, the command service.
func openStack(ctx context.Context, cfg stackConfig) (*stack, error) {
	s := &stack{cfg: cfg}
	if cfg.natsURL != "" {
		nc, err := nats.Connect(cfg.natsURL, append([]nats.Option{nats.Name("aclbench"), nats.MaxReconnects(-1)}, cfg.natsOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", cfg.natsURL, err)
		}
		s.nc = nc
	} else {
		// The stack is acld: its connection is the store's owner, the only writer; the
		// workloads' clients (connect) are callers, as services are.
		owner, err := events.NewOwner()
		if err != nil {
			return nil, err
		}
		srv, err := events.StartServer(events.ServerConfig{Dir: filepath.Join(cfg.dir, "nats"), Sync: cfg.sync, Owner: owner})
		if err != nil {
			return nil, err
		}
		s.srv, s.owner = srv, owner
		if s.nc, err = events.ConnectInProcess(srv, owner.Option()); err != nil {
			s.close()
			return nil, err
		}
	}
	store, err := events.OpenStore(ctx, s.nc, events.StoreConfig{})
	if err != nil {
		s.close()
		return nil, err
	}
	s.store = store
	if !s.remote() {
		s.cmds = commands.NewService(s.nc, store, commands.Options{Logger: cfg.log})
		if err := s.cmds.Start(context.WithoutCancel(ctx)); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// connect opens another connection to the server (in-process connections need no socket), so
// that concurrent clients do not share one connection's lock and buffers. The connection is a
// caller's, as a service's would be.
func (s *stack) connect() (*nats.Conn, error) {
	if s.remote() {
		return s.keep(nats.Connect(s.cfg.natsURL, append([]nats.Option{nats.Name("aclbench")}, s.cfg.natsOpts...)...))
	}
	return s.keep(events.ConnectInProcess(s.srv))
}

// connectOwner opens an in-process connection as the store's owner, for acld's own part
// (serving queries).
func (s *stack) connectOwner() (*nats.Conn, error) {
	return s.keep(events.ConnectInProcess(s.srv, s.owner.Option()))
}

// keep remembers a connection for close.
func (s *stack) keep(nc *nats.Conn, err error) (*nats.Conn, error) {
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	return nc, nil
}

// startReadSide opens the read model and starts the projector following the stream, and with
// withReplay the replay service (audit index and the checkpoints as_of starts from) before it,
// so that checkpoints are taken as the projector advances.
func (s *stack) startReadSide(ctx context.Context, withReplay bool) error {
	if s.remote() {
		return errors.New("the read side of a running acld is reached over HTTP or NATS, not in-process")
	}
	if s.proj != nil {
		return nil
	}
	db, err := projections.OpenDB(filepath.Join(s.cfg.dir, "readmodel"), projections.DBOptions{CacheBytes: int64(s.cfg.cacheMB) << 20})
	if err != nil {
		return err
	}
	s.db = db
	if s.proj, err = projections.NewProjector(db, s.store); err != nil {
		return err
	}
	s.engine = projections.NewEngine(db, s.proj, projections.EngineOptions{})
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if withReplay {
		s.replay, err = replay.New(s.store, db, s.proj, replay.Options{Dir: filepath.Join(s.cfg.dir, "replay"),
			CheckpointEvery: s.cfg.checkpointEvery, Logger: s.cfg.log})
		if err != nil {
			return err
		}
		s.replay.Start(ctx)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.proj.Run(ctx); err != nil {
			s.cfg.log.Error("projector stopped", "err", err)
		}
	}()
	return nil
}

// caughtUp waits until the projector has applied the stream's last sequence.
func (s *stack) caughtUp(ctx context.Context) (uint64, error) {
	last, err := s.store.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.proj.WaitFor(ctx, last); err != nil {
		return 0, fmt.Errorf("projector at %d of %d: %w", s.proj.Applied(), last, err)
	}
	return last, nil
}

// close stops everything this process started, in reverse order.
func (s *stack) close() {
	s.stopQueryServers()
	if s.cmds != nil {
		s.cmds.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.replay != nil {
		if err := s.replay.Close(); err != nil {
			s.cfg.log.Warn("replay close", "err", err)
		}
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.cfg.log.Warn("read model close", "err", err)
		}
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// dirSize is the bytes under dir (what a data set costs on disk).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// waitFor polls cond until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// firstSeq is the sequence of the first message on subject (0 when it has none): one direct
// get, where Store.Load would read the subject's whole history (a tenant's runs to 10^5
// messages of seat changes).
func (s *stack) firstSeq(ctx context.Context, subject string) (uint64, error) {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, s.store.Name())
	if err != nil {
		return 0, err
	}
	m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("first message of %s: %w", subject, err)
	}
	return m.Sequence, nil
}
