package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// stack is acld's parts wired as acld wires them, in process: an embedded NATS server that
// listens on a random port (the CLI connects to it like to a real acld), the command service,
// the projector, the replay service and the query server with history and diff.
type stack struct {
	url  string
	data string // like acld's --data: readmodel/ and replay/
	env  *eventstest.Env
	// bulk is told of the batches of a load (a load never ends for it, and it holds nothing:
	// the followers do not yield to it here).
	bulk *events.BulkLoad
}

func startStack(t *testing.T) *stack {
	t.Helper()
	env := eventstest.StartWith(t, events.ServerConfig{Listen: "127.0.0.1:-1"}, events.StoreConfig{})
	data := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	db, err := projections.OpenDB(filepath.Join(data, "readmodel"), projections.DBOptions{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projections.NewProjector(db, env.Store)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := replay.New(env.Store, db, proj, replay.Options{Dir: filepath.Join(data, "replay"), CheckpointEvery: 10, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	engine := projections.NewEngine(db, proj, projections.EngineOptions{})
	changes, err := events.OpenChanges(ctx, env.Conn, 1)
	if err != nil {
		t.Fatal(err)
	}
	feed := projections.NewFeed(engine, projections.FeedOptions{Publish: changes.Publish, Flush: changes.Flush, Logger: log, CPU: -1})
	proj.SetFeed(feed)
	done := make(chan struct{})
	go func() { defer close(done); proj.Run(ctx) }() //nolint:errcheck // stopped by cancel
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); feed.Run(ctx) }() //nolint:errcheck // stopped by cancel
	rs.Start(ctx)
	qs := projections.NewServer(engine, proj, projections.ServerOptions{Logger: log,
		AsOf: func(ctx context.Context, tenant string, at projections.Moment) (*projections.Engine, func(), error) {
			return rs.AsOf(ctx, tenant, replay.Moment{Seq: at.Seq, Time: at.Time})
		}})
	qs.Handle("history", func(ctx context.Context, r projections.Request) (any, error) {
		var q replay.HistoryRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return rs.History(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	qs.Handle("review", func(ctx context.Context, r projections.Request) (any, error) {
		var q aggregates.ReviewRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return rs.Review(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	qs.Handle("diff", func(ctx context.Context, r projections.Request) (any, error) {
		var q replay.DiffRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return rs.Diff(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	if err := qs.ServeNATS(ctx, env.Conn); err != nil {
		t.Fatal(err)
	}
	bulk := &events.BulkLoad{Quiet: 24 * time.Hour}
	cmds := commands.NewService(env.Conn, env.Store, commands.Options{Logger: log, Effects: engine.Effects, Bulk: bulk})
	if err := cmds.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmds.Close()
		qs.Close()
		cancel()
		<-done
		<-feedDone
		feed.Close()
		rs.Close()
		db.Close()
	})
	return &stack{url: env.Server.ClientURL(), data: data, env: env, bulk: bulk}
}

// aclctl runs the CLI against the stack and returns its exit code and outputs.
func (s *stack) aclctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"--nats-url", s.url}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// must runs the CLI and fails the test unless it exits with want.
func (s *stack) must(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := s.aclctl(t, args...)
	if code != want {
		t.Fatalf("aclctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

// seqOf reads the seq of a --json command answer.
func seqOf(t *testing.T, out string) string {
	t.Helper()
	var a struct {
		Seq json.Number `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	return a.Seq.String()
}
