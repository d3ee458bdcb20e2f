package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
)

// TestDryRunRemembersNoCommandID: a dry run with a command id writes nothing and leaves the id
// free: the real command with that id then writes, and a dry run with the id of a stored
// command answers what the command would do now, not the stored answer.
func TestDryRunRemembersNoCommandID(t *testing.T) {
	nc := startStack(t)
	send := func(name, body string) map[string]any {
		t.Helper()
		msg, err := nc.Request("acl.commands.acme."+name, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var a map[string]any
		if err := json.Unmarshal(msg.Data, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	send("CreateTenant", `{"command_id":"01a24533-0000-7000-8000-000000000001","actor":"system","preset":"trackops","admin":{"principal":"admin","kind":"staff","email":"a@acme.test"}}`)
	const id = "01a24533-0000-7000-8000-000000000002"
	body := func(dry bool) string {
		return fmt.Sprintf(`{"command_id":%q,"actor":"admin","principal":"bob","kind":"staff","email":"b@acme.test","dry_run":%v}`, id, dry)
	}
	first := send("RegisterPrincipal", body(true))
	if first["ok"] != true || first["dry_run"] != true || len(first["events"].([]any)) != 1 {
		t.Fatalf("dry run: %v", first)
	}
	real := send("RegisterPrincipal", body(false))
	if real["ok"] != true || real["dry_run"] != nil || len(real["events"].([]any)) != 1 {
		t.Fatalf("the command after the dry run with its id: %v", real)
	}
	if ev := first["events"].([]any)[0].(map[string]any); ev["type"] != "principal_registered" {
		t.Fatalf("the dry run would write %v", ev)
	}
	again := send("RegisterPrincipal", body(true))
	if again["ok"] != false || again["error"].(map[string]any)["code"] != "already_exists" {
		t.Fatalf("a dry run with a stored command's id: %v, want already_exists (what it would do now)", again)
	}
}

// TestNoChangeFeed: acld --no-change-feed creates no changes stream and sets no feed (another
// instance may publish it); commands and queries work as before.
func TestNoChangeFeed(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true; c.NoChangeFeed = true })
	if m.feed != nil {
		t.Fatal("a feed was set up")
	}
	js, err := jetstream.New(m.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(context.Background(), events.ChangesStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream %s: %v, want not found", events.ChangesStream, err)
	}
}
