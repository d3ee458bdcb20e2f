package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// TestExternalServerConfiguration: the shipped deploy/nats-server.conf with the accounts that
// `acld nats-config` writes, on a real nats-server, and acld on it with --nats-url,
// --nats-nkey and --auth. The same holds as with the embedded server: an identity's command is
// served and attributed to it, its forged events are refused and nothing is stored, and a
// connection without credentials is refused.
func TestExternalServerConfiguration(t *testing.T) {
	ids := writeIdentities(t)
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(dir, "acld.seed")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	var accounts bytes.Buffer
	if ok, err := runTool([]string{"nats-config", "--owner-key", pub, "--auth", ids.path}, nil, &accounts); !ok || err != nil {
		t.Fatalf("acld nats-config: %v", err)
	}
	if _, err := runTool([]string{"nats-config", "--owner-key", pub}, nil, io.Discard); err == nil {
		t.Fatal("acld nats-config without --auth wrote an anonymous caller allowed everything")
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("deploy/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats-server.conf"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats-server.conf"))
	if err != nil {
		t.Fatalf("the shipped configuration: %v", err)
	}
	opts.Port, opts.StoreDir, opts.NoSigs, opts.NoLog = -1, filepath.Join(dir, "store"), true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()

	m := startMain(t, func(c *Config) {
		c.NATSURL, c.NATSNkey, c.Auth, c.Demo = url, seedFile, ids.path, true
	})
	billing, err := nats.Connect(url, nkeyOption(t, ids.billingSeed))
	if err != nil {
		t.Fatal(err)
	}
	defer billing.Close()
	a := request(t, billing, "acl.commands.demo.RegisterRecord", cmdBody("ann", `"type":"invoice","id":"inv-ext"`))
	if a.raw["ok"] != true {
		t.Fatalf("billing's command through the external server: %v", a.raw)
	}
	if a := request(t, billing, "acl.commands.demo.AssignRole", cmdBody("ann", `"principal":"bob","role":"administrator"`)); a.code() != "forbidden" {
		t.Fatalf("a command billing may not send: %v", a.raw)
	}
	before := lastSeq(t, m)
	billing.Publish("acl.events.demo.principal.bob", forgeRoleAssigned(t, m))
	billing.Flush()
	js, _ := jetstream.New(billing)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := js.Publish(ctx, "acl.events.demo.principal.bob", forgeRoleAssigned(t, m)); err == nil {
		t.Fatal("JetStream acknowledged billing's forged event")
	}
	if after := lastSeq(t, m); after != before {
		t.Fatalf("the stream moved from %d to %d", before, after)
	}
	ops, err := nats.Connect(url, nats.UserInfo("ops", ids.opsPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	caughtUp(t, m, before)
	h := request(t, ops, "acl.queries.demo.history", `{"record":{"type":"invoice","id":"inv-ext"},"min_seq":`+itoa(before)+`}`)
	if evs, _ := h.raw["events"].([]any); len(evs) != 1 || !strings.Contains(toJSON(evs[0]), `"via":"billing"`) {
		t.Fatalf("history of inv-ext: %v", h.raw)
	}
	if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a connection without credentials: %v", err)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestClusterConfigurationsParse: the shipped three-node configurations, with the accounts
// `acld nats-config` writes beside them, are what nats-server accepts: each names its node,
// the cluster and the three routes, JetStream, and acld's accounts.
func TestClusterConfigurationsParse(t *testing.T) {
	ids := writeIdentities(t)
	_, owner := ownerSeedFile(t)
	dir := t.TempDir()
	var accounts bytes.Buffer
	if _, err := runTool([]string{"nats-config", "--owner-key", owner.PublicKey(), "--auth", ids.path}, nil, &accounts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		conf, err := os.ReadFile(filepath.Join("deploy", "cluster", name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, conf, 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if opts.Cluster.Username == "" || opts.Cluster.Password == "" {
			t.Fatalf("%s: routes without authorization: any server could join and write acld's stream", name)
		}
		for _, r := range opts.Routes {
			if r.User == nil {
				t.Fatalf("%s: route %s without credentials", name, r.Redacted())
			}
		}
		if opts.ServerName != name || opts.Cluster.Name != "acl" || len(opts.Routes) != 3 || !opts.JetStream {
			t.Fatalf("%s: server %q, cluster %q, %d routes, jetstream %v", name, opts.ServerName, opts.Cluster.Name, len(opts.Routes), opts.JetStream)
		}
		var names []string
		for _, a := range opts.Accounts {
			names = append(names, a.Name)
		}
		if !slices.Contains(names, "ACL") || !slices.Contains(names, "caller-billing") || !slices.Contains(names, "caller-ops") {
			t.Fatalf("%s: accounts %v", name, names)
		}
	}
}
