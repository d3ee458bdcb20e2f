package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/replay"
)

// TestSession is an operator's and an auditor's session against a running service: commands,
// checks now and as of before a change, history, diff, export, tail, rebuild and verify, with
// the exit codes scripts rely on.
func TestSession(t *testing.T) {
	s := startStack(t)
	s.must(t, exitOK, "cmd", "acme", "CreateTenant", `{"preset":"trackops","admin":{"principal":"ann","kind":"staff","email":"ann@acme.test"}}`)
	s.must(t, exitOK, "cmd", "acme", "RegisterPrincipal", `{"principal":"bob","kind":"staff","email":"bob@acme.test"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "ann")
	s.must(t, exitOK, "cmd", "acme", "SetAccessLevel", `{"actor":"ann","principal":"bob","level":"full"}`)
	granted := seqOf(t, s.must(t, exitOK, "--json", "cmd", "acme", "RegisterRecord", `{"type":"invoice","id":"inv-1"}`, "--actor", "ann"))
	revoked := seqOf(t, s.must(t, exitOK, "--json", "cmd", "acme", "RevokeRole", `{"principal":"bob","role":"staff"}`, "--actor", "ann"))
	for i := range 8 { // enough events for a checkpoint (every 10) before verify
		s.must(t, exitOK, "cmd", "acme", "RegisterRecord", fmt.Sprintf(`{"type":"case","id":"c%d"}`, i), "--actor", "ann")
	}

	tests := []struct {
		name string
		want int
		args []string
		out  string // a substring of stdout
	}{
		{"check denied now", exitDenied, []string{"check", "acme", "bob", "invoice.view", "invoice/inv-1", "--min-seq", revoked}, "DENIED"},
		{"check allowed as of then", exitOK, []string{"check", "acme", "bob", "invoice.view", "invoice/inv-1", "--as-of", granted}, "ALLOWED"},
		{"visible as of then", exitOK, []string{"visible", "acme", "bob", "invoice", "--as-of", granted, "--all"}, "inv-1"},
		{"permissions", exitOK, []string{"permissions", "acme", "ann"}, "role:administrator"},
		{"principals", exitOK, []string{"principals", "acme", "invoice/inv-1", "invoice.view", "--as-of", granted}, "bob"},
		{"generic query", exitOK, []string{"query", "acme", "recipients", `{"record":{"type":"invoice","id":"inv-1"}}`}, `"principals"`},
		{"history", exitOK, []string{"history", "acme", "--principal", "bob", "--all"}, "role_revoked"},
		{"diff", exitOK, []string{"diff", "acme", "bob", "--from", granted, "--to", revoked}, "invoice lost (1): inv-1"},
		{"unknown principal", exitAnswer, []string{"check", "acme", "dave", "invoice.view"}, ""},
		{"forbidden command", exitAnswer, []string{"cmd", "acme", "AssignRole", `{"principal":"bob","role":"staff"}`, "--actor", "bob"}, ""},
		{"unknown field", exitUsage, []string{"cmd", "acme", "AssignRole", `{"principal":"bob","rol":"staff"}`}, ""},
		{"unknown command", exitUsage, []string{"cmd", "acme", "Promote", `{}`}, ""},
		{"bad moment", exitUsage, []string{"check", "acme", "bob", "invoice.view", "--as-of", "yesterday"}, ""},
		{"missing argument", exitUsage, []string{"check", "acme", "bob"}, ""},
		{"bad record", exitUsage, []string{"recipients", "acme", "inv-1"}, ""},
		{"future sequence", exitUnavailable, []string{"check", "acme", "bob", "invoice.view", "--as-of", "99999999", "--timeout", "5s"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := s.must(t, tc.want, tc.args...)
			if !strings.Contains(out, tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, out)
			}
		})
	}

	t.Run("export csv", func(t *testing.T) {
		var hist replay.HistoryAnswer
		if err := json.Unmarshal([]byte(s.must(t, exitOK, "--json", "history", "acme", "--principal", "bob", "--all")), &hist); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "bob.csv")
		s.must(t, exitOK, "export", "acme", "--principal", "bob", "--format", "csv", "-o", file)
		rows := readCSV(t, file)
		if len(rows) != len(hist.Events)+1 || strings.Join(rows[0], ",") != strings.Join(replay.ExportColumns, ",") {
			t.Fatalf("csv of %d rows (header %v), want %d events", len(rows), rows[0], len(hist.Events))
		}
		if last := rows[len(rows)-1]; last[6] != "role_revoked" || last[0] != revoked {
			t.Errorf("last row %v, want role_revoked at %s", last, revoked)
		}
	})
	t.Run("tail", func(t *testing.T) {
		out := s.must(t, exitOK, "--json", "tail", "--from", "1", "--count", "3")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[0], `"tenant_created"`) {
			t.Errorf("tail: %q", out)
		}
	})
	t.Run("rebuild and verify", func(t *testing.T) {
		dir := t.TempDir()
		a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
		s.must(t, exitOK, "rebuild", "--out", a)
		s.must(t, exitOK, "rebuild", "--out", b)
		s.must(t, exitOK, "rebuild", "--out", c, "--to", granted)
		s.must(t, exitOK, "verify", a, b)
		if out := s.must(t, exitDenied, "verify", a, c); !strings.Contains(out, "differences") {
			t.Errorf("verify of models at two sequences: %s", out)
		}
		s.must(t, exitUsage, "rebuild", "--out", a, "--model", "everything")
		s.must(t, exitAnswer, "rebuild", "--out", a) // not empty
		eventstest.WaitFor(t, 30*time.Second, func() error {
			if code, out, _ := s.aclctl(t, "verify", "--data", s.data); code != exitOK {
				return errors.New(out)
			}
			return nil
		})
		s.must(t, exitAnswer, "verify", "--against", filepath.Join(s.data, "readmodel")) // acld holds it
	})
}

// TestUnavailable: no NATS server at the address is exit 3.
func TestUnavailable(t *testing.T) {
	var out, errOut strings.Builder
	code := run(t.Context(), []string{"--nats-url", "nats://127.0.0.1:1", "check", "acme", "bob", "x.view"}, &out, &errOut)
	if code != exitUnavailable {
		t.Fatalf("exit %d, want %d (%s)", code, exitUnavailable, errOut.String())
	}
}

func readCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
