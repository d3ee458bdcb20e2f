package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// startMain starts the whole server in-process: embedded NATS without a listener, Pebble and the
// replay data in t.TempDir(), HTTP on a random loopback port.
func startMain(t testing.TB, mutate ...func(*Config)) *Main {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.NATSListen = ""
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.CheckpointN = 50
	for _, f := range mutate {
		f(&cfg)
	}
	m := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		m.Close()
		t.Fatalf("start acld: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close acld: %v", err)
		}
	})
	return m
}

// startStack is what the scenarios need: a client connection to a running server.
func startStack(t testing.TB) *nats.Conn {
	t.Helper()
	m := startMain(t)
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
