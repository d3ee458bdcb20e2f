// Command acld is the access-control server: an embedded NATS server with JetStream (or an
// external one with --nats-url), the command service, the projector into Pebble, and the query
// API over HTTP and NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if ok, err := runTool(os.Args[1:], os.Stdin, os.Stdout); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	cfg, err := ParseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flagHelp) {
			os.Exit(0)
		}
		var bad *configError
		if errors.As(err, &bad) { // the flag package printed its own errors
			fmt.Fprintln(os.Stderr, "acld:", err)
		}
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cfg.LogLevel)}))
	// The limit is the process's, so it is set here and not in Main (tests run many in one).
	if cfg.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procs(cfg.Procs, runtime.GOMAXPROCS(0)))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var started atomic.Pointer[Main] // what the idle trim drops the caches of, once Run has set it up
	if cfg.IdleTrim > 0 {
		go trimWhenIdle(ctx, cfg.IdleTrim, logger, func() {
			if m := started.Load(); m != nil {
				m.dropCaches()
			}
		})
	}
	m := NewMain(cfg, logger)
	if err := m.Run(ctx); err != nil {
		logger.Error("start failed", "err", err)
		m.Close()
		os.Exit(1)
	}
	started.Store(m)
	<-ctx.Done()
	logger.Info("stopping", "bound", cfg.ShutdownWait)
	// Close stops taking commands and queries, answers those in flight and flushes the read
	// model. Past the bound acld exits anyway: everything acknowledged is in the stream, and the
	// read model resumes from its last committed sequence.
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			logger.Error("stop", "err", err)
			os.Exit(1)
		}
	case <-time.After(cfg.ShutdownWait):
		logger.Error("stop: not done within --shutdown-wait; exiting anyway", "bound", cfg.ShutdownWait)
		os.Exit(1)
	}
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		fmt.Fprintf(os.Stderr, "acld: unknown log level %q, using info\n", s)
		return slog.LevelInfo
	}
	return l
}
