package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWatch: aclctl watch prints the change a command makes to a principal's access, once.
func TestWatch(t *testing.T) {
	s := startStack(t)
	s.must(t, exitOK, "cmd", "acme", "CreateTenant", `{"preset":"trackops","admin":{"principal":"ann","kind":"staff","email":"ann@acme.test"}}`)
	s.must(t, exitOK, "cmd", "acme", "RegisterPrincipal", `{"principal":"bob","kind":"staff","email":"bob@acme.test"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "SetAccessLevel", `{"actor":"ann","principal":"bob","level":"limited"}`)
	s.must(t, exitOK, "cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "RegisterRecord", `{"type":"case","id":"case-7"}`, "--actor", "ann")
	setup := seqOf(t, s.must(t, exitOK, "--json", "cmd", "acme", "RegisterRecord", `{"type":"invoice","id":"inv-1","links":[{"type":"case","id":"case-7"}]}`, "--actor", "ann"))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	watch := func() {
		out.Reset()
		errOut.Reset()
		go func() {
			done <- run(ctx, []string{"--nats-url", s.url, "watch", "acme", "--principal", "bob", "--count", "1"}, &out, &errOut)
		}()
	}
	watch()
	// The watch may not have subscribed yet when a command is sent: assign and unassign in
	// turn until it prints the change of one of them.
	deadline := time.Now().Add(15 * time.Second)
	assigned := false
	for {
		select {
		case code := <-done:
			if code != exitOK {
				t.Fatalf("watch: exit %d: %s", code, errOut.String())
			}
			line := out.String()
			if f := strings.Fields(line); len(f) > 0 && atMost(f[0], setup) {
				// A change of the set-up, announced after the watch subscribed (the feed publishes
				// behind the commands under load): not the one asked for; watch again.
				watch()
				continue
			}
			if !strings.Contains(line, "acme  bob") || !strings.Contains(line, "invoice: +1 inv-1") && !strings.Contains(line, "invoice: -1 inv-1") {
				t.Fatalf("watch printed %q", line)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("watch printed nothing")
		}
		cmd := "AssignRecord"
		if assigned {
			cmd = "UnassignRecord"
		}
		s.must(t, exitOK, "cmd", "acme", cmd, `{"type":"case","id":"case-7","principal":"bob"}`, "--actor", "ann")
		assigned = !assigned
	}
}

// atMost reports whether the sequence a is at most b (both decimal).
func atMost(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x <= y
}

// TestCmdDryRun: aclctl cmd --dry-run prints the events a command would write and its effects
// as tables, and writes nothing (a check after it still answers as before).
func TestCmdDryRun(t *testing.T) {
	s := startStack(t)
	s.must(t, exitOK, "cmd", "acme", "CreateTenant", `{"preset":"trackops","admin":{"principal":"ann","kind":"staff","email":"ann@acme.test"}}`)
	s.must(t, exitOK, "cmd", "acme", "RegisterPrincipal", `{"principal":"bob","kind":"staff","email":"bob@acme.test"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "SetAccessLevel", `{"actor":"ann","principal":"bob","level":"full"}`)
	seq := seqOf(t, s.must(t, exitOK, "--json", "cmd", "acme", "RegisterRecord", `{"type":"invoice","id":"inv-1"}`, "--actor", "ann"))
	out := s.must(t, exitOK, "cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "ann", "--dry-run")
	for _, want := range []string{"nothing written", "role_assigned", "bob        invoice.view", "bob        invoice  1       0     +inv-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	s.must(t, exitDenied, "check", "acme", "bob", "invoice.view", "invoice/inv-1", "--min-seq", seq)
	s.must(t, exitAnswer, "cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "bob", "--dry-run")
}

// TestReview: aclctl review writes the access review as CSV (a row per principal and type) and
// JSON lines, now and as of before a change.
func TestReview(t *testing.T) {
	s := startStack(t)
	s.must(t, exitOK, "cmd", "acme", "CreateTenant", `{"preset":"trackops","admin":{"principal":"ann","kind":"staff","email":"ann@acme.test"}}`)
	s.must(t, exitOK, "cmd", "acme", "RegisterPrincipal", `{"principal":"bob","kind":"staff","email":"bob@acme.test"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "SetAccessLevel", `{"actor":"ann","principal":"bob","level":"full"}`)
	before := seqOf(t, s.must(t, exitOK, "--json", "cmd", "acme", "RegisterRecord", `{"type":"invoice","id":"inv-1"}`, "--actor", "ann"))
	s.must(t, exitOK, "cmd", "acme", "RegisterRecord", `{"type":"invoice","id":"inv-2"}`, "--actor", "ann")
	out := s.must(t, exitOK, "review", "acme")
	for _, want := range []string{"principal,kind,level,roles,grants,type,visible", "bob,staff,full,staff,", ",invoice,2,", "SetAccessLevel"} {
		if !strings.Contains(out, want) {
			t.Errorf("review lacks %q:\n%s", want, out)
		}
	}
	out = s.must(t, exitOK, "review", "acme", "--format", "jsonl", "--as-of", before, "--principal", "bob", "--type", "invoice")
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, `"visible":{"invoice":1}`) {
		t.Errorf("bob's review as of %s: %s", before, out)
	}
	s.must(t, exitUsage, "review", "acme", "--format", "xml")
}
