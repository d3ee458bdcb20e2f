package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
)

// TestClusterNewerAsksTheLeader: on a stream at R3, the command service's check that a state is
// its subject's last (events.Store.Newer, before answering a command that writes nothing) is
// answered by the stream's leader through acld's identity, as on a single server.
func TestClusterNewerAsksTheLeader(t *testing.T) {
	skipCluster(t)
	seedFile, owner := ownerSeedFile(t)
	nodes := startCluster(t, owner)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	m := startMain(t, func(c *Config) {
		c.DataDir, c.NATSURL, c.NATSNkey, c.Replicas, c.NATSListen = t.TempDir(), strings.Join(urls, ","), seedFile, 3, ""
		c.StoreWait = time.Minute
	})
	if r := m.store.Replicas(); r != 3 {
		t.Fatalf("the stream has %d replicas", r)
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if a := request(t, nc, "acl.commands.c1.CreateTenant", cmdBody("system", `"preset":"trackops","admin":{"principal":"root","kind":"staff","email":"r@c.test"}`)); a.raw["ok"] != true {
		t.Fatalf("create tenant: %v", a.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject, err := events.Subject("c1", events.TenantRef("c1"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := m.store.Load(ctx, subject, 0)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("the tenant's messages: %d, %v", len(msgs), err)
	}
	last := msgs[len(msgs)-1].Seq
	for _, c := range []struct {
		after uint64
		want  bool
	}{{0, true}, {last - 1, true}, {last, false}} {
		if got, err := m.store.Newer(ctx, subject, c.after); err != nil || got != c.want {
			t.Errorf("Newer(%s, %d) = %v, %v; want %v", subject, c.after, got, err, c.want)
		}
	}
}
