package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestChangeFeedListenedWithAuth: with --auth, a service subscribes to the change feed from its
// own account, through the import of acl.changes.>; acld's embedded server sees it, so the
// feed derives that principal's changes only, and none while nobody subscribes. An
// assignment of case-2 to bob with nobody subscribed derives nothing; once billing follows
// bob, a case registered with bob as its assignee (ann, the administrator, sees it too) is
// derived for bob alone and delivered to billing.
func TestChangeFeedListenedWithAuth(t *testing.T) {
	ids := writeIdentities(t)
	m := startSecured(t, ids)
	billing, err := nats.Connect(m.nats.ClientURL(), nkeyOption(t, ids.billingSeed))
	if err != nil {
		t.Fatal(err)
	}
	defer billing.Close()
	feedPublished(t, m, request(t, billing, "acl.commands.demo.AssignRecord", cmdBody("ann", `"type":"case","id":"case-2","principal":"bob"`)))
	if n, unheard := m.feed.Changes(), func() uint64 { u, _ := m.feed.Unheard(); return u }(); n != 0 || unheard == 0 {
		t.Fatalf("nobody subscribed: %d changes derived, %d events unheard", n, unheard)
	}

	sub, err := billing.SubscribeSync(events.ChangesSubject("demo", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	billing.Flush()
	seq := feedPublished(t, m, request(t, billing, "acl.commands.demo.RegisterRecord",
		cmdBody("ann", `"type":"case","id":"case-9","client":"acme","units":[{"kind":"location","id":"east"}],"assignees":[{"principal":"bob","relation":"assignee"}]`)))
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("bob's change: %v", err)
	}
	var c aggregates.Change
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Seq != seq || c.Principal != "bob" || c.Visible["case"].GainedCount != 1 {
		t.Fatalf("change %s, want bob gaining case-9 at seq %d", msg.Data, seq)
	}
	if n := m.feed.Changes(); n != 1 {
		t.Fatalf("%d changes derived, want bob's alone", n)
	}
}

// feedPublished waits until m's change feed has handled the message of a, a command's answer,
// and returns its seq.
func feedPublished(t *testing.T, m *Main, a answer) uint64 {
	t.Helper()
	seq, _ := a.raw["seq"].(float64)
	if a.raw["ok"] != true || seq == 0 {
		t.Fatalf("command: %v", a.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.feed.WaitFor(ctx, uint64(seq)); err != nil {
		t.Fatal(err)
	}
	return uint64(seq)
}
