package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

// tinyOptions is a data set and run short enough for CI: two tenants of different presets, a
// few hundred records, every workload for a fraction of a second, on a real embedded NATS and
// a real Pebble in dir.
func tinyOptions(dir, load string) options {
	return options{
		seed:  3,
		scale: Scale{Records: 300, Principals: 60, Tenants: 2, Presets: []string{"trackops", "reconpro"}, Prefix: "smoke"},
		load:  load, loadConcurrency: 8, loadConns: 2,
		dataDir: dir, duration: 150 * time.Millisecond, clients: []int{1, 4},
		workers: 2, natsConns: 1, via: "inprocess", checkpointEvery: 200, cacheMB: 8, quiet: true, run: "smoke",
	}
}

// TestSmokeEveryWorkload runs every workload at a tiny scale in-process and checks that each
// measured something without errors.
func TestSmokeEveryWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and Pebble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := runOnce(ctx, tinyOptions(t.TempDir(), "fast"), workloads, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Workload] = true
		if len(r.Errors) > 0 {
			t.Errorf("%s/%s: errors %v %v", r.Workload, r.Variant, r.Errors, r.Notes)
		}
		if r.Workload != "memory" && r.Ops == 0 {
			t.Errorf("%s/%s: no operations", r.Workload, r.Variant)
		}
		if r.Memory.RSSMB == 0 || r.Memory.HeapMB == 0 {
			t.Errorf("%s/%s: no memory figures %+v", r.Workload, r.Variant, r.Memory)
		}
	}
	for _, w := range append(workloadNames(), "load") {
		if strings.HasPrefix(w, "check-") {
			w = "check"
		}
		if !seen[w] {
			t.Errorf("no result of %s", w)
		}
	}
	if rep.Dataset == nil || rep.Dataset.Messages == 0 || rep.Dataset.Events == 0 {
		t.Errorf("dataset %+v", rep.Dataset)
	}
}

// TestLoadPathsAgree loads the same data set through the command path and the fast path into
// two servers and compares what they stored: for every aggregate the same events (type, schema,
// actor, command id and hash, cause, data), and the read models built from them answer the
// same checks. So the fast path writes what the command service writes.
func TestLoadPathsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and Pebble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var benches []*bench
	for _, path := range []string{"commands", "fast"} {
		o := tinyOptions(t.TempDir(), path)
		o.scale.Presets = []string{"trackops", "probuild"}
		b, err := newBench(o, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.close)
		if err := b.load(ctx); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		benches = append(benches, b)
	}
	viaCommands, viaFast := storedEvents(t, ctx, benches[0].st.store), storedEvents(t, ctx, benches[1].st.store)
	if len(viaCommands) == 0 {
		t.Fatal("nothing stored")
	}
	for subject, want := range viaCommands {
		got := viaFast[subject]
		if strings.Contains(subject, ".tenant.") {
			// Units and seats were written concurrently by the command path: same events,
			// another order.
			slices.Sort(want)
			slices.Sort(got)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\ncommand path %v\nfast path    %v", subject, want, got)
		}
	}
	if len(viaFast) != len(viaCommands) {
		t.Errorf("fast path wrote %d subjects, command path %d", len(viaFast), len(viaCommands))
	}
	// The read models agree on every question the check workload asks.
	var answers [2][]bool
	for k, b := range benches {
		q, done, err := b.querier(ctx, "inprocess")
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range b.ds.checkTargets(400) {
			ok, err := q.check(ctx, ct.tenant, ct.q, 0)
			if err != nil {
				t.Fatalf("check %+v: %v", ct, err)
			}
			answers[k] = append(answers[k], ok)
		}
		done()
	}
	if !slices.Equal(answers[0], answers[1]) {
		t.Error("the read models of the two paths answer checks differently")
	}
	if !slices.Contains(answers[0], true) || !slices.Contains(answers[0], false) {
		t.Error("the checks are all allowed or all denied: the data set exercises nothing")
	}
}

// storedEvents reads the whole stream: per subject, each event as a comparable line without
// what differs by nature between two servers (event ids, times, sequences).
func storedEvents(t *testing.T, ctx context.Context, st *events.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := st.Read(ctx, 1, 0, func(ms []events.Message) error {
		for _, m := range ms {
			for _, e := range m.Events {
				out[m.Subject] = append(out[m.Subject], fmt.Sprintf("%s/%d actor=%s cmd=%s hash=%s cause=%s %s",
					e.Type, e.Schema, e.Actor, e.CommandID, e.CommandHash, e.Cause, e.Data))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRYWLinkAssignsTheLinkedRecord runs ryw --ryw-link on the compare shape: each write assigns
// a limited staff member to the case an invoice links to, and the check with min_seq asks about
// the invoice, issue 13's workload. A check not allowed is a stale read (errStale): so the
// assigned case must be the invoice's link, and the read model must derive the invoice from it.
func TestRYWLinkAssignsTheLinkedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS and Pebble")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := tinyOptions(t.TempDir(), "fast")
	o.scale = Scale{Records: 400, Principals: 80, Tenants: 1, Presets: []string{"compare"}, Prefix: "link"}
	o.rywLink, o.workers = true, 1
	var ws []workload
	for _, w := range workloads {
		if w.name == "ryw" {
			ws = append(ws, w)
		}
	}
	rep, err := runOnce(ctx, o, ws, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, r := range rep.Results {
		if r.Workload != "ryw" {
			continue
		}
		n++
		if !strings.HasSuffix(r.Variant, "/link") || r.Ops == 0 || len(r.Errors) > 0 {
			t.Errorf("ryw %s: %d ops, errors %v %v", r.Variant, r.Ops, r.Errors, r.Notes)
		}
	}
	if n != 1 {
		t.Fatalf("%d ryw results", n)
	}
}
