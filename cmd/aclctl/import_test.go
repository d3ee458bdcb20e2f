package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// importFile writes a tenant's commands as import lines: the tenant, units, principals with
// levels (each a two-aggregate command: the tenant's seats) and roles, then records linked to
// each other and assigned to the principals. Command ids are fixed by the seed, so two files
// of one seed name the same commands.
func writeImportFile(t *testing.T, dir, tenant string, principals, records int, bad map[int]func(string) string) (string, []string) {
	t.Helper()
	ns := uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
	var lines, ids []string
	add := func(cmd aggregates.Command) {
		b := cmd.Base()
		b.CommandID = uuid.NewSHA1(ns, fmt.Appendf(nil, "%s-%d", tenant, len(lines))).String()
		body, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if spoil, ok := bad[len(lines)+1]; ok {
			body = []byte(spoil(string(body)))
		}
		line, _ := json.Marshal(importLine{Tenant: tenant, Command: cmd.Name(), Body: body})
		lines = append(lines, string(line))
		ids = append(ids, b.CommandID)
	}
	admin := aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@" + tenant + ".test"}
	add(&aggregates.CreateTenant{CommandBase: aggregates.CommandBase{Actor: aggregates.SystemActor}, Preset: "trackops", Admin: admin})
	actor := aggregates.CommandBase{Actor: "admin"}
	for i := range 3 {
		add(&aggregates.DefineUnit{CommandBase: actor, Unit: events.UnitRef{Kind: aggregates.UnitLocation, ID: fmt.Sprintf("loc-%d", i)}})
	}
	pid := func(j int) string { return fmt.Sprintf("p-%04d", j) }
	for j := range principals {
		add(&aggregates.RegisterPrincipal{CommandBase: actor, Principal: pid(j), Kind: aggregates.KindStaff, Email: pid(j) + "@" + tenant + ".test"})
	}
	for j := range principals {
		level := aggregates.LevelLimited
		if j%10 == 0 {
			level = aggregates.LevelFull
		}
		add(&aggregates.SetAccessLevel{CommandBase: actor, Principal: pid(j), Level: level})
	}
	for j := range principals {
		add(&aggregates.AssignRole{CommandBase: actor, Principal: pid(j), Role: "staff"})
	}
	for i := range records {
		body := events.RecordBody{Type: "case", ID: fmt.Sprintf("case-%05d", i), Client: "c1",
			Assignees: []events.Assignee{{Principal: pid(i % principals), Relation: events.DefaultRelation}}}
		if i%2 == 1 {
			body.Type, body.ID = "invoice", fmt.Sprintf("inv-%05d", i)
			body.Links = []events.RecordRef{{Type: "case", ID: fmt.Sprintf("case-%05d", i-1)}}
		}
		add(&aggregates.RegisterRecord{CommandBase: actor, RecordBody: body})
		if i%7 == 0 { // a second command on a record of the same batch
			add(&aggregates.AssignRecord{CommandBase: actor, Type: body.Type, ID: body.ID, Principal: pid((i + 1) % principals)})
		}
	}
	path := filepath.Join(dir, tenant+".jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// storedCommands reads the whole stream: for each command id, its events as "subject type data"
// in stream order, and how many messages carried it to each subject.
func storedCommands(t *testing.T, s *stack) (map[string][]string, map[string]int) {
	t.Helper()
	evs, msgs := map[string][]string{}, map[string]int{}
	err := s.env.Store.Read(context.Background(), 1, 0, func(ms []events.Message) error {
		for _, m := range ms {
			for k, e := range m.Events {
				evs[e.CommandID] = append(evs[e.CommandID], m.Subject+" "+e.Type+" "+string(e.Data))
				if k == 0 {
					msgs[e.CommandID+" "+m.Subject]++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs, msgs
}

// interruptedImport runs an import into s and ends its context once the progress file says n
// commands were answered: it returns the exit code and what it wrote on stderr.
func interruptedImport(s *stack, progress string, n int, args ...string) (int, string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if p, ok := readProgress(progress); ok && p.Commands >= n {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var out, errOut strings.Builder
	code := run(ctx, append([]string{"--nats-url", s.url, "import"}, args...), &out, &errOut)
	return code, errOut.String()
}

// TestImportIdempotentAndResumable interrupts an import midway (its context ends while a batch
// is in flight), runs it again, and compares the stream with an import of the same file that ran
// once: the same commands with the same events, none stored twice; a third run applies nothing.
// With --pipeline 2 (two batches in flight) as with one at a time.
func TestImportIdempotentAndResumable(t *testing.T) {
	for _, pipeline := range []string{"1", "2"} {
		t.Run("pipeline "+pipeline, func(t *testing.T) { testImportResumable(t, pipeline) })
	}
}

func testImportResumable(t *testing.T, pipeline string) {
	dir := t.TempDir()
	path, ids := writeImportFile(t, dir, "acme", 60, 600, nil)

	ref := startStack(t)
	ref.must(t, exitOK, "import", path, "--batch", "25")
	want, _ := storedCommands(t, ref)
	if len(want) != len(ids) {
		t.Fatalf("the uninterrupted import stored %d commands, want %d", len(want), len(ids))
	}

	s := startStack(t)
	progress := path + ".progress"
	code, errOut := interruptedImport(s, progress, 300, path, "--batch", "25", "--pipeline", pipeline)
	p, ok := readProgress(progress)
	if code == exitOK || !ok || p.Commands >= len(ids) {
		t.Fatalf("the interrupted import exited %d with progress %+v (%v): it was not interrupted\n%s", code, p, ok, errOut)
	}
	got, _ := storedCommands(t, s)
	if len(got) < p.Commands {
		t.Fatalf("progress says %d commands answered, the stream has %d", p.Commands, len(got))
	}
	resumed := s.must(t, exitOK, "import", path, "--batch", "25", "--pipeline", pipeline)
	if _, err := os.Stat(progress); !os.IsNotExist(err) {
		t.Errorf("the progress file is still there after a complete import: %v", err)
	}
	again := s.must(t, exitOK, "import", path, "--batch", "25", "--pipeline", pipeline)
	if resumed != again {
		t.Errorf("a repeated import answered seq %q, the complete one %q: something was written again", again, resumed)
	}
	got, msgs := storedCommands(t, s)
	for key, n := range msgs {
		if n != 1 {
			t.Errorf("%s stored %d times", key, n)
		}
	}
	for _, id := range ids {
		if !slices.Equal(got[id], want[id]) {
			t.Fatalf("command %s: events\n%v\nwant (uninterrupted import)\n%v", id, got[id], want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d commands stored, want %d", len(got), len(want))
	}
	// The read model agrees: a full principal sees every record, a limited one its own.
	out2 := s.must(t, exitOK, "visible", "acme", "p-0001", "invoice", "--all", "--min-seq", strings.TrimSpace(again))
	if !strings.Contains(out2, "inv-00001") {
		t.Errorf("p-0001 does not see inv-00001, assigned through case-00000:\n%s", out2)
	}
}

// TestImportStopsAtABadLine: a body the service refuses (an unknown field; a role that does not
// exist) is reported with its line number, nothing of it is written, nor of the lines after it,
// and what came before it is stored; with two batches in flight (--pipeline 2) as with one.
func TestImportStopsAtABadLine(t *testing.T) {
	tests := []struct {
		name  string
		line  int
		spoil func(body string) string
		want  string
	}{
		{"unknown field", 40, func(b string) string { return strings.Replace(b, `"principal"`, `"rol":"x","principal"`, 1) },
			"line 40 (RegisterPrincipal)"},
		{"guard", 120, func(b string) string { return strings.Replace(b, `"role":"staff"`, `"role":"nope"`, 1) },
			"line 120 (AssignRole)"},
	}
	for _, tc := range tests {
		for _, pipeline := range []string{"1", "2"} {
			t.Run(tc.name+" pipeline "+pipeline, func(t *testing.T) {
				s := startStack(t)
				path, ids := writeImportFile(t, t.TempDir(), "acme", 50, 20, map[int]func(string) string{tc.line: tc.spoil})
				code, _, errOut := s.aclctl(t, "import", path, "--batch", "30", "--pipeline", pipeline)
				if code != exitAnswer || !strings.Contains(errOut, tc.want) {
					t.Fatalf("exit %d, stderr %q; want %d naming %q", code, errOut, exitAnswer, tc.want)
				}
				got, _ := storedCommands(t, s)
				for i, id := range ids {
					_, stored := got[id]
					if line := i + 1; stored != (line < tc.line) {
						t.Errorf("line %d stored: %v (bad line %d)", line, stored, tc.line)
					}
				}
			})
		}
	}
}

// TestImportHoldsReadSideOnlyWhenAsked: an import's batches are a bulk load that acld's read
// side may yield to only with --hold-read-side; by default they are plain batches, which an acld
// from before the flag also takes.
func TestImportHoldsReadSideOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hold bool
	}{
		{"default", nil, false},
		{"asked", []string{"--hold-read-side"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := writeImportFile(t, t.TempDir(), "acme", 5, 20, nil)
			s := startStack(t)
			s.must(t, exitOK, append([]string{"import", path}, tc.args...)...)
			if got := s.bulk.Running(); got != tc.hold {
				t.Fatalf("a bulk load ran: %v, want %v", got, tc.hold)
			}
		})
	}
}

// TestImportBatchSplit: the batches cut for an acld from before round 10 keep each command's
// lines and the file offset after the last one, so the progress kept after each part is right.
func TestImportBatchSplit(t *testing.T) {
	b := &pendingBatch{tenant: "acme", first: 3, last: 9, end: 90}
	for i := range 5 {
		line := 3 + i
		if i == 4 {
			line = 8 // an export's command may span lines
		}
		b.cmds = append(b.cmds, commands.BatchCommand{Command: fmt.Sprint("c", i)})
		b.items = append(b.items, importItem{command: fmt.Sprint("c", i), first: line, last: line + i/4, end: int64(10 * (line + i/4))})
	}
	parts := b.split(2)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	want := []struct {
		first, last, n int
		end            int64
	}{{3, 4, 2, 40}, {5, 6, 2, 60}, {8, 9, 1, 90}}
	for k, p := range parts {
		w := want[k]
		if p.first != w.first || p.last != w.last || p.end != w.end || len(p.cmds) != w.n || len(p.items) != w.n || p.tenant != "acme" {
			t.Errorf("part %d: lines %d-%d, end %d, %d commands; want %+v", k, p.first, p.last, p.end, len(p.cmds), w)
		}
	}
	if !oldLimit(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: commands.BatchName, Message: "a batch carries at most 1000 commands"}) {
		t.Error("the refusal of an acld from before round 10 is not recognized")
	}
	if oldLimit(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: commands.BatchName, Message: "a batch carries at most 3000 commands"}) {
		t.Error("this acld's refusal taken for an old one's")
	}
}

// TestImportResumeRefusesAnotherServer: an import interrupted into one server and run again
// against another does not resume past lines that server never got. It asks the server whether
// it holds the last command answered with events (a lookup, which writes nothing) and stops,
// asking for --restart, when the server does not (a fresh one, as a wiped one is) or holds it at
// another sequence (it got the file too, after another tenant's lines); the refused resume
// writes nothing to the server and leaves the progress file as it was. The first server passes
// the check and completes; with --restart the second one gets every command once.
func TestImportResumeRefusesAnotherServer(t *testing.T) {
	dir := t.TempDir()
	path, ids := writeImportFile(t, dir, "acme", 60, 600, nil)
	progress := path + ".progress"

	a := startStack(t)
	code, errOut := interruptedImport(a, progress, 300, path, "--batch", "25")
	p, ok := readProgress(progress)
	if code == exitOK || !ok || p.Witness == nil || p.Witness.Seq == 0 {
		t.Fatalf("the interrupted import exited %d with progress %+v (%v)\n%s", code, p, ok, errOut)
	}
	saved, err := os.ReadFile(progress)
	if err != nil {
		t.Fatal(err)
	}

	b := startStack(t)
	code, _, stderr := b.aclctl(t, "import", path, "--batch", "25")
	if code != exitAnswer || !strings.Contains(stderr, "does not hold it") || !strings.Contains(stderr, "--restart") {
		t.Fatalf("resuming into another server exited %d, want %d and a message asking for --restart:\n%s", code, exitAnswer, stderr)
	}
	if got, _ := storedCommands(t, b); len(got) != 0 {
		t.Errorf("the refused resume wrote %d commands to the other server", len(got))
	}
	if p2, ok := readProgress(progress); !ok || p2.Offset != p.Offset || p2.Witness == nil || p2.Witness.Seq != p.Witness.Seq {
		t.Errorf("the refused resume changed the progress from %+v to %+v", p, p2)
	}
	b.must(t, exitOK, "import", path, "--batch", "25", "--restart")
	got, msgs := storedCommands(t, b)
	if len(got) != len(ids) {
		t.Errorf("after --restart the second server has %d commands, want %d", len(got), len(ids))
	}
	for key, n := range msgs {
		if n != 1 {
			t.Errorf("%s stored %d times", key, n)
		}
	}

	// A server that holds the commands at other sequences (another tenant came first).
	c := startStack(t)
	other, _ := writeImportFile(t, dir, "other", 5, 10, nil)
	c.must(t, exitOK, "import", other)
	c.must(t, exitOK, "import", path, "--batch", "25", "--progress-file", filepath.Join(dir, "c.progress"))
	before, _ := storedCommands(t, c)
	if err := os.WriteFile(progress, saved, 0o644); err != nil { // B's complete import removed it
		t.Fatal(err)
	}
	code, _, stderr = c.aclctl(t, "import", path, "--batch", "25")
	if code != exitAnswer || !strings.Contains(stderr, "holds it at seq") || !strings.Contains(stderr, "--restart") {
		t.Fatalf("resuming into a server holding the lines at other sequences exited %d, want %d and a message asking for --restart:\n%s", code, exitAnswer, stderr)
	}
	if after, _ := storedCommands(t, c); len(after) != len(before) {
		t.Errorf("the refused resume changed the third server: %d commands, then %d", len(before), len(after))
	}

	// The first server, resumed, passes the check and completes.
	if err := os.WriteFile(progress, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	a.must(t, exitOK, "import", path, "--batch", "25")
	if got, _ := storedCommands(t, a); len(got) != len(ids) {
		t.Errorf("the resumed first server has %d commands, want %d", len(got), len(ids))
	}
}

// TestOldLookupRecognized: the refusal of a lookup by an acld from before lookups (its strict
// decoding of a batch request without the field) is recognized, so that the resume goes on
// unchecked; this acld's refusal of a lookup with load is not.
func TestOldLookupRecognized(t *testing.T) {
	var before struct {
		Commands []commands.BatchCommand `json:"commands"`
		Load     bool                    `json:"load,omitempty"`
		Pipe     string                  `json:"pipe,omitempty"`
		Seq      uint64                  `json:"seq,omitempty"`
	}
	body, _ := json.Marshal(commands.BatchRequest{Commands: []commands.BatchCommand{{Command: "AssignRole", Body: json.RawMessage(`{}`)}}, Lookup: true})
	err := aggregates.DecodeStrict("body", body, &before)
	if err == nil {
		t.Fatal("a batch request with lookup decoded as one from before lookups")
	}
	err.Op = commands.BatchName
	if !oldLookup(err) {
		t.Errorf("the refusal of an acld from before lookups is not recognized: %v", err)
	}
	if oldLookup(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: commands.BatchName,
		Message: "a batch of lookups writes nothing: it takes neither load nor pipe"}) {
		t.Error("this acld's refusal taken for an old one's")
	}
}

// TestWitnessIsTheLastStored: the witness of a resume is the command stored last, not the last
// line answered: a line carried out again alone after a lost race is stored after the lines
// behind it (round 16's review reproduced line 184 at seq 770 after line 199 at 751), and a
// stream cut between the two holds the later line only. No-ops (no events) and refusals are
// never witnesses, and a batch stored before an earlier witness does not replace it.
func TestWitnessIsTheLastStored(t *testing.T) {
	b := &pendingBatch{tenant: "acme"}
	res := func(seq uint64, evs ...string) commands.BatchOutcome {
		return commands.BatchOutcome{Result: commands.Result{Seq: seq, Events: evs}}
	}
	for i := range 4 {
		b.cmds = append(b.cmds, commands.BatchCommand{Command: "SetEmail", Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		b.items = append(b.items, importItem{first: 10 + i, last: 10 + i})
	}
	out := []commands.BatchOutcome{res(770, "e1"), res(751, "e2"), res(780), {Err: &aggregates.Error{Code: aggregates.CodeConflict}}}
	w := witnessOf(nil, b, out)
	if w == nil || w.Line != 10 || w.Seq != 770 || string(w.Body) != `{"n":0}` {
		t.Fatalf("witness %+v: want line 10 at seq 770 (stored after line 11; line 12 changed nothing)", w)
	}
	if got := witnessOf(w, b, []commands.BatchOutcome{res(700, "e3")}); got != w {
		t.Errorf("a command stored before the witness replaced it: %+v", got)
	}
	if got := witnessOf(w, b, []commands.BatchOutcome{res(800, "e4")}); got == w || got.Seq != 800 || got.Line != 10 {
		t.Errorf("a command stored after the witness did not replace it: %+v", got)
	}
	if got := witnessOf(nil, b, []commands.BatchOutcome{res(5)}); got != nil {
		t.Errorf("a no-op became the witness: %+v", got)
	}
}
