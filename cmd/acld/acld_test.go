package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: status %d, body %q is not JSON: %v", url, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a start under load takes its time
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 60 s (last err %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp waits up to 60 s until m's read model has applied seq. A test asking with min_seq
// seq then checks the answer, not how fast the follower catches up: min_seq's own wait
// (--query-wait, 2 s) is the server's bound, and under .ci/run's parallel packages a read
// model was seconds behind.
func caughtUp(t testing.TB, m *Main, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.proj.WaitFor(ctx, seq); err != nil {
		t.Fatalf("the read model did not reach seq %d within 60 s: %v", seq, err)
	}
	// history waits for the audit index, not the read model (replay's historyBounds)
	if m.replay != nil && m.replay.Audit() != nil {
		if err := m.replay.Audit().WaitFor(ctx, seq); err != nil {
			t.Fatalf("the audit index did not reach seq %d within 60 s: %v", seq, err)
		}
	}
}

func lastSeq(t testing.TB, m *Main) uint64 {
	t.Helper()
	seq, err := m.store.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// The demo tenant answers queries at once, and starting with --demo again writes nothing.
func TestDemoTenantIsReadyAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.Demo = true; c.DataDir = dir })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	seq := lastSeq(t, m)
	code, a := postJSON(t, base+"/v1/tenants/demo/check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":`+itoa(seq)+`}`)
	if code != 200 || a["allowed"] != true {
		t.Fatalf("bob on inv-1 (linked to his case): %d %v", code, a)
	}
	code, a = postJSON(t, base+"/v1/tenants/demo/visible", `{"principal":"cora","type":"invoice","min_seq":`+itoa(seq)+`}`)
	if code != 200 || !equalIDs(a["ids"], "inv-1", "inv-3") {
		t.Fatalf("cora's invoices: %d %v", code, a)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startMain(t, func(c *Config) { c.Demo = true; c.DataDir = dir })
	if got := lastSeq(t, m2); got != seq {
		t.Fatalf("second --demo start moved the stream from %d to %d", seq, got)
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func equalIDs(v any, want ...string) bool {
	got, ok := v.([]any)
	if !ok || len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// The HTTP API: status codes by error code (SPEC section 6), health, readiness and metrics.
func TestHTTPStatusCodes(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	seq := itoa(lastSeq(t, m))
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"allowed", "/v1/tenants/demo/check", `{"principal":"ann","permission":"case.view","min_seq":` + seq + `}`, 200, ""},
		{"unknown principal", "/v1/tenants/demo/check", `{"principal":"nobody","permission":"case.view"}`, 404, "not_found"},
		{"unknown tenant", "/v1/tenants/nope/check", `{"principal":"ann","permission":"case.view"}`, 404, "not_found"},
		{"unknown permission", "/v1/tenants/demo/check", `{"principal":"ann","permission":"case.fly","min_seq":` + seq + `}`, 400, "unknown_permission"},
		{"malformed json", "/v1/tenants/demo/check", `{"principal":`, 400, "invalid_argument"},
		{"unknown field", "/v1/tenants/demo/check", `{"principal":"ann","permision":"case.view"}`, 400, "invalid_argument"},
		{"bad cursor", "/v1/tenants/demo/visible", `{"principal":"ann","type":"case","cursor":"a b"}`, 400, "invalid_argument"},
		{"limit too large", "/v1/tenants/demo/visible", `{"principal":"ann","type":"case","limit":5000}`, 400, "invalid_argument"},
		{"unknown query", "/v1/tenants/demo/fly", `{}`, 404, "not_found"},
		{"not caught up", "/v1/tenants/demo/check", `{"principal":"ann","permission":"case.view","min_seq":999999999}`, 503, "not_caught_up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, a := postJSON(t, base+c.path, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %v", status, c.status, a)
			}
			if c.code != "" {
				e, _ := a["error"].(map[string]any)
				if e == nil || e["code"] != c.code {
					t.Fatalf("answer %v, want code %s", a, c.code)
				}
			}
		})
	}
	resp, err := http.Get(base + "/v1/tenants/demo/check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
	big := `{"principal":"` + strings.Repeat("a", 2<<20) + `"}`
	resp, err = http.Post(base+"/v1/tenants/demo/check", "application/json", bytes.NewReader([]byte(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MiB body: %d, want 413", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"go_goroutines", `acl_asof_chain_events_total{how="mirrored"}`, "acl_asof_chain_batches_dropped_total",
		`acl_store_memtable_bytes{store="readmodel"}`, `acl_store_disk_bytes{store="audit"}`, `acl_store_compacted_bytes_total{store="spill"}`,
		`acl_store_flushed_bytes_total{store="events"}`, `acl_store_disk_bytes{store="versions"}`, `acl_store_compactions_total{store="audit"}`,
		"acl_block_cache_bytes", "acl_block_cache_misses_total", `acl_c_heap_bytes{state="free"}`,
		`acl_change_feed_messages_total{outcome="announced"}`, "acl_change_feed_changes_total",
		"acl_stream_shared_consumers_total 1", "acl_stream_followers_behind_total 0", "acl_command_states_behind_total"} {
		if !bytes.Contains(metrics, []byte(name)) {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
}

// Every acknowledged event is still there, with the same sequence, after a restart on the same
// directory, and the read model answers as before.
func TestRestartKeepsEventsAndAnswers(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, func(c *Config) { c.Demo = true; c.DataDir = dir })
	seq := lastSeq(t, m)
	subject, _ := events.Subject("demo", events.PrincipalRef("bob"))
	before, err := m.store.Load(context.Background(), subject, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := startMain(t, func(c *Config) { c.DataDir = dir })
	after, err := m2.store.Load(context.Background(), subject, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(before) == 0 {
		t.Fatalf("bob's messages: %d before, %d after", len(before), len(after))
	}
	for i := range before {
		if before[i].Seq != after[i].Seq || before[i].Events[0].ID != after[i].Events[0].ID {
			t.Fatalf("message %d changed: %d/%s -> %d/%s", i, before[i].Seq, before[i].Events[0].ID, after[i].Seq, after[i].Events[0].ID)
		}
	}
	base := "http://" + m2.HTTPAddr()
	code, a := postJSON(t, base+"/v1/tenants/demo/check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":`+itoa(seq)+`}`)
	if code != 200 || a["allowed"] != true {
		t.Fatalf("after restart: %d %v", code, a)
	}
}
