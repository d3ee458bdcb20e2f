package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// randomTenant drives a random history into tenant acme of s, command by command as services
// send them: aggregatestest's commands (by admin and, one in five, by a second administrator
// boss), and the ones it does not make (subscriptions by system, emails, role deletions). It
// returns the stream's last sequence.
func randomTenant(t *testing.T, s *stack, seed uint64, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	c := commands.NewClient(s.env.Conn)
	m := aggregates.NewMemory("acme")
	var last uint64
	tenantSubject, _ := events.Subject("acme", events.TenantRef("acme"))
	var tenantSeq uint64
	do := func(actor string, cmd aggregates.Command) {
		cmd.Base().Actor = actor
		res, err := c.Do(ctx, "acme", cmd)
		if err != nil {
			if aggregates.ErrorCode(err) == aggregates.CodeInternal || aggregates.ErrorCode(err) == aggregates.CodeUnavailable {
				t.Fatalf("%s: %v", cmd.Name(), err)
			}
			return
		}
		last = max(last, res.Seq)
		msgs, err := s.env.Store.Load(ctx, tenantSubject, tenantSeq) // the generator reads the tenant's roles and policy
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			tenantSeq = msg.Seq
			for _, e := range msg.Events {
				if err := m.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	do(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: aggregatestest.Admin, Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	for _, cmd := range aggregatestest.Setup() {
		do(aggregatestest.Admin, cmd)
	}
	do(aggregatestest.Admin, &aggregates.RegisterPrincipal{Principal: "boss", Kind: aggregates.KindStaff, Email: "boss@acme.test"})
	do(aggregatestest.Admin, &aggregates.AssignRole{Principal: "boss", Role: "administrator"})
	do(aggregatestest.Admin, &aggregates.SetAccessLevel{Principal: "boss", Level: aggregates.LevelFull})
	gen := aggregatestest.NewRandom(seed)
	for i := range n {
		switch i % 50 {
		case 10:
			do(aggregates.SystemActor, &aggregates.SetSubscription{Features: &[]string{}, Seats: map[string]int{"full": 4 + i%3}})
		case 20:
			email := fmt.Sprintf("new-%d@acme.test", i)
			do(aggregatestest.Admin, &aggregates.SetEmail{Principal: aggregatestest.Principals[i%6], Email: &email})
		case 30:
			for _, role := range slices.Sorted(maps.Keys(m.T.Roles)) {
				if strings.Contains(role, "_") { // the generator's roles: staff_1, ...
					do("boss", &aggregates.DeleteRole{Role: role})
				}
			}
		default:
			actor, cmd := gen.Command(m.T)
			if i%5 == 0 {
				actor = "boss"
			}
			do(actor, cmd)
		}
	}
	return last
}

// answers asks every query of tenant acme about every principal and record of the random
// history's pools, and returns the answers without what is particular to a stream (sequences
// and event ids), keyed by the query; an error answer is its code.
func answers(t *testing.T, s *stack, minSeq uint64) map[string]string {
	t.Helper()
	ctx := context.Background()
	c := commands.NewClient(s.env.Conn)
	out := map[string]string{}
	ask := func(query string, body any) {
		var ans any
		err := c.Query(ctx, "acme", query, body, &ans, commands.MinSeq(minSeq))
		key := query + " " + js(body)
		if err != nil {
			code := aggregates.ErrorCode(err)
			if code != aggregates.CodeNotFound {
				t.Fatalf("%s: %v", key, err)
			}
			out[key] = "error " + string(code)
			return
		}
		out[key] = js(withoutStreamFields(ans))
	}
	principals := append([]string{aggregatestest.Admin, "boss"}, aggregatestest.Principals...)
	ask("tenant", aggregates.TenantQuery{Limit: 1000})
	for _, p := range principals {
		ask("permissions", aggregates.PermissionsQuery{Principal: p})
		for _, typ := range aggregatestest.Types {
			for _, action := range []string{"view", "edit"} {
				ask("visible", aggregates.VisibleQuery{Principal: p, Type: typ, Action: action, Limit: 1000})
				for _, id := range aggregatestest.IDs {
					ask("check", aggregates.CheckQuery{Principal: p, Permission: typ + "." + action, Record: &events.RecordRef{Type: typ, ID: id}})
				}
			}
		}
	}
	for _, typ := range aggregatestest.Types {
		for _, id := range aggregatestest.IDs {
			rec := events.RecordRef{Type: typ, ID: id}
			ask("principals", aggregates.PrincipalsQuery{Record: rec, Permission: typ + ".view"})
			ask("recipients", aggregates.RecipientsQuery{Record: rec})
		}
	}
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// withoutStreamFields drops the fields that name a stream's sequences and event ids.
func withoutStreamFields(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"seq", "events"} {
			delete(v, k)
		}
		for k, x := range v {
			v[k] = withoutStreamFields(x)
		}
	case []any:
		for i, x := range v {
			v[i] = withoutStreamFields(x)
		}
	}
	return v
}

// sameAnswers fails the test where two stacks answer differently.
func sameAnswers(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d answers, want %d", what, len(got), len(want))
	}
	bad := 0
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			if bad++; bad <= 5 {
				t.Errorf("%s: %s\n got %s\nwant %s", what, k, got[k], want[k])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d answers differ", what, bad, len(want))
	}
}

// TestImportOfAnExport: a tenant with a random history is exported whole (JSON lines and CSV)
// from one acld and imported into fresh ones: every event comes back, decided again through
// every guard, on the same subject with the same data and command id (and actor), and every
// query answers as on the original. The JSON lines import is interrupted midway and resumed by
// the same progress file; run again, it writes nothing.
func TestImportOfAnExport(t *testing.T) {
	src := startStack(t)
	last := randomTenant(t, src, 7, 800)
	want := answers(t, src, last)
	wantEvents, _ := storedCommands(t, src)
	t.Logf("the original: %d commands up to seq %d, %d query answers", len(wantEvents), last, len(want))

	dir := t.TempDir()
	jsonl, csvFile := filepath.Join(dir, "acme.jsonl"), filepath.Join(dir, "acme.csv")
	src.must(t, exitOK, "export", "acme", "--all", "-o", jsonl)
	src.must(t, exitOK, "export", "acme", "--all", "--format", "csv", "-o", csvFile)
	if out := src.must(t, exitOK, "export", "acme", "--all"); !strings.Contains(out, `"type":"tenant_created"`) {
		t.Fatalf("export --all to standard output lacks the tenant's creation:\n%.300s", out)
	}

	// CSV, in one run.
	viaCSV := startStack(t)
	seq, _ := strconv.ParseUint(strings.TrimSpace(viaCSV.must(t, exitOK, "import", csvFile, "--batch", "20")), 10, 64)
	sameAnswers(t, "imported from CSV", answers(t, viaCSV, seq), want)

	// JSON lines, interrupted once some batches are answered, then resumed.
	dst := startStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	progress := jsonl + ".progress"
	stop := make(chan struct{})
	go func() {
		for {
			if p, ok := readProgress(progress); ok && p.Commands >= 100 {
				cancel()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var out, errOut strings.Builder
	code := run(ctx, []string{"--nats-url", dst.url, "import", jsonl, "--batch", "20"}, &out, &errOut)
	close(stop)
	cancel()
	p, ok := readProgress(progress)
	if code == exitOK || !ok || p.Commands < 100 {
		t.Fatalf("the interrupted import exited %d with progress %+v (%v): it was not interrupted\n%s", code, p, ok, errOut.String())
	}
	resumed := dst.must(t, exitOK, "import", jsonl, "--batch", "20")
	again := dst.must(t, exitOK, "import", jsonl, "--batch", "20")
	if again != resumed {
		t.Errorf("a repeated import answered seq %q, the complete one %q: something was written again", again, resumed)
	}
	seq, _ = strconv.ParseUint(strings.TrimSpace(again), 10, 64)
	sameAnswers(t, "imported from JSON lines, interrupted and resumed", answers(t, dst, seq), want)

	for name, s := range map[string]*stack{"CSV": viaCSV, "JSON lines": dst} {
		got, msgs := storedCommands(t, s)
		for key, n := range msgs {
			if n != 1 {
				t.Errorf("%s: %s stored %d times", name, key, n)
			}
		}
		if len(got) != len(wantEvents) {
			t.Errorf("%s: %d commands stored, the original has %d", name, len(got), len(wantEvents))
		}
		for id, evs := range wantEvents {
			if !slices.Equal(got[id], evs) {
				t.Fatalf("%s: command %s stored\n%v\nthe original\n%v", name, id, got[id], evs)
			}
		}
	}
	// The actors are the original ones (admin, boss and system all acted).
	if got, want := actorsOf(t, dst), actorsOf(t, src); !maps.Equal(got, want) {
		t.Errorf("the imported commands' actors differ from the original's")
	}
}

// actorsOf is the actor of every command of the stream, by command id.
func actorsOf(t *testing.T, s *stack) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.env.Store.Read(context.Background(), 1, 0, func(ms []events.Message) error {
		for _, m := range ms {
			for _, e := range m.Events {
				out[e.CommandID] = e.Actor
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportRefusesAnExport: an export that cannot be loaded stops at the line that cannot, with
// its line number and a stable code; nothing of it is written, what came before it is.
func TestImportRefusesAnExport(t *testing.T) {
	src := startStack(t)
	randomTenant(t, src, 3, 60)
	dir := t.TempDir()
	path := filepath.Join(dir, "acme.jsonl")
	src.must(t, exitOK, "export", "acme", "--all", "-o", path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	// line finds the first line (1-based) with all of the strings.
	line := func(parts ...string) int {
		for i, l := range lines {
			if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
				return i + 1
			}
		}
		t.Fatalf("the export has no line with %v", parts)
		return 0
	}
	tests := []struct {
		name string
		line int
		edit func(string) string // the new line; "" removes it
		want string
	}{
		{"a guard: the role's principal is not registered", line(`"type":"role_assigned"`, `"id":"boss"`), nil,
			"(AssignRole): AssignRole: not_found: principal boss is not registered"},
		{"no command writes these events", line(`"type":"role_assigned"`, `"id":"boss"`),
			func(l string) string {
				return strings.Replace(l, `"cause":"AssignRole"`, `"cause":"SetAccessLevel"`, 1)
			},
			"(events role_assigned): invalid_argument: command"},
		{"not an event", line(`"type":"unit_defined"`),
			func(l string) string { return strings.Replace(l, `"actor"`, `"actr"`, 1) }, "invalid_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			edited := slices.Clone(lines)
			bad := tc.line
			if tc.edit == nil {
				// Remove the principal's registration: the line that needs it is refused.
				reg := line(`"type":"principal_registered"`, `"id":"boss"`)
				edited = slices.Delete(edited, reg-1, reg)
				bad--
			} else {
				edited[bad-1] = tc.edit(edited[bad-1])
			}
			f := filepath.Join(t.TempDir(), "acme.jsonl")
			if err := os.WriteFile(f, []byte(strings.Join(edited, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s := startStack(t)
			code, _, errOut := s.aclctl(t, "import", f, "--batch", "7")
			if wantLine := fmt.Sprintf("line %d", bad); code != exitAnswer || !strings.Contains(errOut, wantLine) || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d naming %q and %q", code, errOut, exitAnswer, wantLine, tc.want)
			}
			// Every command before the bad line is stored, nothing from it on.
			stored, _ := storedCommands(t, s)
			for i, l := range edited {
				var e events.Envelope
				if json.Unmarshal([]byte(l), &e) != nil || e.CommandID == "" {
					continue
				}
				if _, ok := stored[e.CommandID]; ok != (i+1 < bad) {
					t.Errorf("line %d (%s) stored: %v; the bad line is %d", i+1, e.Type, ok, bad)
				}
			}
		})
	}
}

// TestImportAsAnotherActor: --actor issues every command of an export as that actor (here
// system, which may issue all), for a caller that may not act as the recorded ones; the tenant
// answers as the original.
func TestImportAsAnotherActor(t *testing.T) {
	src := startStack(t)
	last := randomTenant(t, src, 5, 80)
	want := answers(t, src, last)
	path := filepath.Join(t.TempDir(), "acme.jsonl")
	src.must(t, exitOK, "export", "acme", "--all", "-o", path)
	dst := startStack(t)
	out := dst.must(t, exitOK, "import", path, "--format", "export", "--actor", aggregates.SystemActor)
	seq, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	sameAnswers(t, "imported as system", answers(t, dst, seq), want)
	for id, actor := range actorsOf(t, dst) {
		if actor != aggregates.SystemActor {
			t.Fatalf("command %s was issued by %s", id, actor)
		}
	}
	// --format export on a file of commands is refused before anything is sent.
	cmds, _ := writeImportFile(t, t.TempDir(), "beta", 2, 2, nil)
	if code, _, errOut := dst.aclctl(t, "import", cmds, "--format", "export"); code != exitAnswer || !strings.Contains(errOut, "line 1: invalid_argument") {
		t.Fatalf("--format export of commands: exit %d, %s", code, errOut)
	}
}
