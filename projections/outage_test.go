package projections

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/nats-io/nats.go"
)

// TestProjectorSurvivesServerRestart: the NATS server goes away and comes back (same store
// directory and port); the projector, on a reconnecting connection, follows again from what it
// applied and catches up with what was written after the restart.
func TestProjectorSurvivesServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := eventstest.StartWith(t, events.ServerConfig{Listen: addr}, events.StoreConfig{})
	nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(9, "acme")
	for range 400 {
		g.step()
	}
	half := len(g.items) / 2
	ap := newAppender(env.Store)
	first := ap.add(t, g.items[:half])
	db := openDB(t)
	p := runProjector(t, db, st)
	waitApplied(t, p, first[len(first)-1].Seq)

	env.Restart(t)
	ap.st = env.Store // the env reconnects with a new store; the projector keeps its own
	second := ap.add(t, g.items[half:])
	waitApplied(t, p, second[len(second)-1].Seq)
	sameContents(t, onePass(t, append(first, second...)), db)
}
