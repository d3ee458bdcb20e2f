package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// freePort returns a loopback port nobody listens on (for a server started later).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ownerSeedFile makes acld's key for an external server: the seed file for --nats-nkey.
func ownerSeedFile(t testing.TB) (string, *events.Owner) {
	t.Helper()
	kp := mustSeed(t)
	owner, err := events.OwnerFromSeed(kp)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "acld.seed")
	if err := os.WriteFile(path, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, owner
}

// TestStartupWaitsForTheStore: acld started before its NATS server waits for it (a log line per
// attempt) and serves once it is up; with nothing to wait for it gives up after --store-wait,
// saying what it waited for.
func TestStartupWaitsForTheStore(t *testing.T) {
	port := freePort(t)
	seedFile, owner := ownerSeedFile(t)
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTPListen, cfg.NATSListen = t.TempDir(), "127.0.0.1:0", ""
	cfg.NATSURL, cfg.NATSNkey, cfg.StoreWait = fmt.Sprintf("nats://127.0.0.1:%d", port), seedFile, 30*time.Second
	var logs strings.Builder
	var mu sync.Mutex
	m := NewMain(cfg, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	t.Cleanup(func() { m.Close() })
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	time.Sleep(1500 * time.Millisecond)
	s, err := events.StartServer(events.ServerConfig{Dir: t.TempDir(), Listen: fmt.Sprintf("127.0.0.1:%d", port), Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("acld did not start once NATS was up")
	}
	mu.Lock()
	waited := strings.Count(logs.String(), "waiting for the event store")
	mu.Unlock()
	if waited == 0 {
		t.Fatal("no log line while waiting")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := commands.NewClient(nc).Do(context.Background(), "t1", &aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: "system"},
		Preset: "empty", Admin: aggregates.RegisterPrincipal{Principal: "root", Kind: aggregates.KindStaff, Email: "r@t.test"}}); err != nil {
		t.Fatalf("a command after the wait: %v", err)
	}

	// Nothing ever comes: it gives up after the bound and says why.
	cfg.NATSURL, cfg.StoreWait, cfg.DataDir = fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)), time.Second, t.TempDir()
	m2 := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	err = m2.Run(context.Background())
	m2.Close()
	if err == nil || !strings.Contains(err.Error(), "--store-wait") || !strings.Contains(err.Error(), "ACL_EVENTS") {
		t.Fatalf("nothing to wait for: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("gave up after %v with --store-wait 1s", took)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestReadinessFollowsServing: /readyz is 200 only while commands and queries are served: once
// Run returns a command is answered at once, and as soon as a shutdown begins /readyz is 503.
func TestReadinessFollowsServing(t *testing.T) {
	m := startMain(t)
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if a := request(t, nc, "acl.commands.r1.CreateTenant", cmdBody("system", `"preset":"empty","admin":{"principal":"root","kind":"staff","email":"r@t.test"}`)); a.raw["ok"] != true {
		t.Fatalf("a command once ready: %v", a.raw)
	}
	m.serving.Store(false) // what Close does first
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not serving") {
		t.Fatalf("/readyz while stopping: %d %s", resp.StatusCode, body)
	}
}

// TestGracefulShutdown: commands in flight when acld stops are answered, and every command
// answered ok is in the stream and the read model after a restart on the same directory.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.DataDir = dir })
	nc, err := nats.Connect("", nats.InProcessServer(m.nats), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	c := commands.NewClient(nc)
	ctx := context.Background()
	if _, err := c.Do(ctx, "g1", &aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: "system"},
		Preset: "empty", Admin: aggregates.RegisterPrincipal{Principal: "root", Kind: aggregates.KindStaff, Email: "r@t.test"}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		acks []string
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p-%d-%d", w, i)
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := c.Do(cctx, "g1", &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "root"},
					Principal: id, Kind: aggregates.KindStaff})
				cancel()
				if err != nil {
					return // acld is gone: unanswered, so not acknowledged
				}
				mu.Lock()
				acks = append(acks, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("close took %v", took)
	}
	close(stop)
	wg.Wait()
	nc.Close()
	if len(acks) == 0 {
		t.Fatal("no command was acknowledged before the stop")
	}
	m2 := startMain(t, func(c *Config) { c.DataDir = dir })
	base := "http://" + m2.HTTPAddr()
	waitReady(t, base)
	seq := itoa(lastSeq(t, m2))
	for _, id := range acks {
		status, a := postJSON(t, base+"/v1/tenants/g1/permissions", `{"principal":"`+id+`","min_seq":`+seq+`}`)
		if status != 200 {
			t.Fatalf("acknowledged %s after the restart: %d %v", id, status, a)
		}
	}
	t.Logf("%d commands acknowledged before the stop, all found after it", len(acks))
}
