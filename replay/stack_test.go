package replay

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/projections"
)

// stack is the whole read side on real parts: an embedded NATS server with the event store, a
// live read model in Pebble followed by its projector, and the replay service, all in
// t.TempDir() and stopped by t.Cleanup.
type stack struct {
	env  *eventstest.Env
	d    *driver
	db   *projections.DB
	proj *projections.Projector
	svc  *Service
	fan  *events.Fanout  // the consumer the projector and the audit index share, as in acld
	opts Options         // the replay service's, for restartReplay
	ctx  context.Context // the stack's: ends at cleanup
	// own is the service the stack closes at cleanup: the one it started, or restartReplay's
	// (tests that open services of their own into svc close those themselves).
	own *Service
}

func startStack(tb testing.TB, opts Options) *stack { return startStackWith(tb, opts, nil) }

// startStackWith is startStack with setup called on the projector before it runs; the function
// it returns runs once the projector has stopped, before the read model is closed.
func startStackWith(tb testing.TB, opts Options, setup func(*eventstest.Env, *projections.DB, *projections.Projector) func()) *stack {
	tb.Helper()
	env := eventstest.Start(tb)
	dir := tb.TempDir()
	if opts.CheckpointBudget == 0 {
		opts.CheckpointBudget = -1 // the tests place checkpoints exactly; TestCheckpointBudget bounds them
	}
	db, err := projections.OpenDB(filepath.Join(dir, "model"), projections.DBOptions{CacheBytes: 16 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	fan := events.NewFanout(env.Store)
	proj, err := projections.NewProjector(db, fan)
	if err != nil {
		tb.Fatal(err)
	}
	if opts.Follow == nil {
		opts.Follow = fan
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(dir, "replay")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc, err := New(env.Store, db, proj, opts)
	if err != nil {
		tb.Fatal(err)
	}
	stop := func() {}
	if setup != nil {
		stop = setup(env, db, proj)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proj.Run(ctx) }()
	svc.Start(ctx)
	s := &stack{env: env, d: newDriver(tb, env), db: db, proj: proj, svc: svc, fan: fan, opts: opts, ctx: ctx, own: svc}
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("projector: %v", err)
		}
		stop()
		if err := s.own.Close(); err != nil {
			tb.Errorf("replay close: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("model close: %v", err)
		}
	})
	return s
}

// restartReplay closes the replay service and starts a new one on the same directory, as a
// restart of acld does (the live read model and its projector go on).
func (s *stack) restartReplay(tb testing.TB) {
	tb.Helper()
	if err := s.own.Close(); err != nil {
		tb.Fatalf("replay close: %v", err)
	}
	svc, err := New(s.env.Store, s.db, s.proj, s.opts)
	if err != nil {
		tb.Fatalf("replay reopen: %v", err)
	}
	s.svc, s.own = svc, svc
	svc.Start(s.ctx)
}

// sync waits until the read model and the audit index have applied every message written.
func (s *stack) sync(tb testing.TB) { s.syncWithin(tb, 30*time.Second) }

// syncWithin is sync with a bound for large streams.
func (s *stack) syncWithin(tb testing.TB, d time.Duration) {
	tb.Helper()
	want := s.d.seq
	eventstest.WaitFor(tb, d, func() error {
		if p, a := s.proj.Applied(), s.svc.Audit().Applied(); p < want || a < want {
			return fmt.Errorf("applied: model %d, audit %d; want %d", p, a, want)
		}
		return nil
	})
}

// testWriter sends logs to the test's log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}
