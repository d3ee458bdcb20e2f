package commands

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events/eventstest"
)

// TestViolationEndsRequestAtOnce: a request the server refuses to publish (a caller may not
// publish on the event subjects) ends at once with forbidden instead of waiting for its
// time-out; a request the caller may publish is unaffected.
func TestViolationEndsRequestAtOnce(t *testing.T) {
	env := eventstest.Start(t)
	v := WatchViolations(nil)
	nc := env.Connect(t, v.Option())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := v.Request(ctx, nc, "acl.events.acme.principal.p1", []byte(`[]`))
	if aggregates.ErrorCode(err) != aggregates.CodeForbidden || time.Since(start) > time.Second {
		t.Fatalf("refused publish: %v after %v, want forbidden at once", err, time.Since(start))
	}
	sub, err := env.Conn.Subscribe("acl.commands.acme.Ping", func(m *nats.Msg) { m.Respond([]byte("pong")) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	env.Conn.Flush()
	msg, err := v.Request(ctx, nc, "acl.commands.acme.Ping", nil)
	if err != nil || string(msg.Data) != "pong" {
		t.Fatalf("allowed request: %v %v", msg, err)
	}
}
