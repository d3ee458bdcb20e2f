package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// The Go client (commands.Client) against a real acld with --auth: every query over NATS (as
// the ops identity, user and password) and over HTTP (as the auditor, bearer token).

// clientStack is a secured acld on fixed ports (so that it can be restarted where the clients
// expect it) and clients for both transports.
type clientStack struct {
	cfg  Config
	ids  identities
	m    *Main
	nats *commands.Client // commands and queries over NATS as ops
	http *commands.Client // queries over HTTP as the auditor, commands over NATS as ops
	// disconnects counts the NATS client's lost connections; httpFailures its failed HTTP
	// round trips; httpRequests every HTTP round trip.
	disconnects, httpFailures, httpRequests atomic.Int64
	restarted                               chan *Main // a restart under way
}

func startClientStack(t *testing.T) *clientStack {
	t.Helper()
	s := &clientStack{ids: writeIdentities(t)}
	s.m = startMain(t, func(c *Config) {
		c.Auth, c.Demo = s.ids.path, true
		c.QueryWait = 200 * time.Millisecond // min_seq waits this long, then answers not_caught_up
		c.NATSListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.HTTPListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	})
	s.cfg = s.m.Config
	t.Cleanup(func() {
		if s.restarted != nil {
			s.m = <-s.restarted
		}
		s.m.Close()
	})
	waitReady(t, "http://"+s.m.HTTPAddr())
	nc, err := commands.Dial("nats://"+s.cfg.NATSListen, nats.UserInfo("ops", s.ids.opsPassword),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { s.disconnects.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Conn().Close)
	nc.Wait, nc.AttemptWait = 60*time.Second, 3*time.Second
	s.nats = nc
	s.http = nc.UseHTTP("http://"+s.cfg.HTTPListen, s.ids.auditorToken, &http.Client{Transport: countingTransport{s}})
	return s
}

type countingTransport struct{ s *clientStack }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.s.httpRequests.Add(1)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		c.s.httpFailures.Add(1)
	}
	return resp, err
}

// restart stops acld and starts it again on the same ports and data after a pause, in the
// background; wait returns once it serves. The stack's cleanup stops the last one.
func (s *clientStack) restart(t *testing.T, pause time.Duration) (wait func()) {
	t.Helper()
	if err := s.m.Close(); err != nil {
		t.Fatalf("stop acld: %v", err)
	}
	done := make(chan *Main, 1)
	var err error
	go func() {
		time.Sleep(pause)
		m := NewMain(s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err = m.Run(ctx); err != nil {
			m.Close()
		}
		done <- m
	}()
	s.restarted = done
	return func() {
		t.Helper()
		s.m = <-done
		s.restarted = nil
		if err != nil {
			t.Fatalf("restart acld: %v", err)
		}
	}
}

func (s *clientStack) transports() []struct {
	name string
	c    *commands.Client
} {
	return []struct {
		name string
		c    *commands.Client
	}{{"nats", s.nats}, {"http", s.http}}
}

func rec(typ, id string) *events.RecordRef { return &events.RecordRef{Type: typ, ID: id} }

// TestClientQueries: every query of the client over both transports answers what the demo
// tenant holds, the same on both; a check after a command with its Result as min_seq sees the
// command; as_of (a sequence and a time) answers as before it; errors are typed.
func TestClientQueries(t *testing.T) {
	s := startClientStack(t)
	ctx := context.Background()
	demoSeq := lastSeq(t, s.m)
	answers := map[string][]any{}
	for _, tr := range s.transports() {
		c, after := tr.c, commands.MinSeq(demoSeq)
		check, err := c.Check(ctx, "demo", aggregates.CheckQuery{Principal: "bob", Permission: "invoice.view", Record: rec("invoice", "inv-1")}, after)
		if err != nil || !check.Allowed || len(check.Grants) == 0 || len(check.Events) == 0 || check.Seq < demoSeq {
			t.Fatalf("%s: check bob invoice.view inv-1: %+v %v", tr.name, check, err)
		}
		vis, err := c.VisiblePage(ctx, "demo", aggregates.VisibleQuery{Principal: "cora", Type: "invoice"}, after)
		if err != nil || !slices.Equal(vis.IDs, []string{"inv-1", "inv-3"}) || vis.NextCursor != "" {
			t.Fatalf("%s: cora's invoices: %+v %v", tr.name, vis, err)
		}
		var all []string
		for id, err := range c.Visible(ctx, "demo", aggregates.VisibleQuery{Principal: "cora", Type: "invoice", Limit: 1}, after) {
			if err != nil {
				t.Fatalf("%s: visible by one: %v", tr.name, err)
			}
			all = append(all, id)
		}
		if !slices.Equal(all, vis.IDs) {
			t.Fatalf("%s: cora's invoices one a page: %v, want %v", tr.name, all, vis.IDs)
		}
		perms, err := c.Permissions(ctx, "demo", aggregates.PermissionsQuery{Principal: "carl"}, after)
		if err != nil || perms.Level != aggregates.LevelFullLocation || !slices.Equal(perms.Roles, []string{"staff"}) || len(perms.Grants) == 0 {
			t.Fatalf("%s: carl's permissions: %+v %v", tr.name, perms, err)
		}
		princ, err := c.Principals(ctx, "demo", aggregates.PrincipalsQuery{Record: *rec("invoice", "inv-1"), Permission: "invoice.view"}, after)
		if err != nil || !slices.Contains(princ.Principals, "bob") || !slices.Contains(princ.Principals, "cora") || slices.Contains(princ.Principals, "sam") {
			t.Fatalf("%s: who may view inv-1: %+v %v", tr.name, princ, err)
		}
		recip, err := c.Recipients(ctx, "demo", aggregates.RecipientsQuery{Record: *rec("case", "case-1")}, after)
		if err != nil || !slices.Contains(recip.Principals, "bob") {
			t.Fatalf("%s: recipients of case-1: %+v %v", tr.name, recip, err)
		}
		var hist []aggregates.HistoryEvent
		for e, err := range c.History(ctx, "demo", aggregates.HistoryRequest{Principal: "bob", Limit: 2}, after) {
			if err != nil {
				t.Fatalf("%s: bob's history: %v", tr.name, err)
			}
			hist = append(hist, e)
		}
		page, err := c.HistoryPage(ctx, "demo", aggregates.HistoryRequest{Principal: "bob", Limit: 1000}, after)
		if err != nil || len(hist) < 3 || !reflect.DeepEqual(hist, page.Events) || hist[0].Type != "principal_registered" {
			t.Fatalf("%s: bob's history two a page (%d events) against one page (%d, %v)", tr.name, len(hist), len(page.Events), err)
		}
		diff, err := c.Diff(ctx, "demo", aggregates.DiffRequest{Principal: "bob", From: &aggregates.Moment{Seq: 1}, To: &aggregates.Moment{Seq: demoSeq}}, after)
		if err != nil || len(diff.Added) == 0 || len(diff.Events) == 0 || diff.Seq != demoSeq {
			t.Fatalf("%s: bob's diff since 1: %+v %v", tr.name, diff, err)
		}
		ten, err := c.Tenant(ctx, "demo", aggregates.TenantQuery{Limit: 2}, after)
		if err != nil || ten.Preset != "trackops" || len(ten.Principals) != 2 || ten.NextCursor == "" || len(ten.Units) != 2 {
			t.Fatalf("%s: the demo tenant: %+v %v", tr.name, ten, err)
		}
		rev, err := c.Review(ctx, "demo", aggregates.ReviewRequest{Principals: []string{"bob"}, Types: []string{"invoice"}}, after)
		if err != nil || len(rev.Principals) != 1 || rev.Principals[0].Principal != "bob" || rev.Principals[0].LastChange == nil {
			t.Fatalf("%s: bob's review: %+v %v", tr.name, rev, err)
		}
		answers[tr.name] = []any{check, vis, perms, princ, recip, hist, diff, ten, rev}
	}
	if !reflect.DeepEqual(answers["nats"], answers["http"]) {
		t.Fatalf("the transports answer differently:\nnats %+v\nhttp %+v", answers["nats"], answers["http"])
	}

	// A history walked while it grows describes the moment of its first page: carl's new
	// assignment, written after the first page, is not in it, and is in a walk begun later.
	carl := aggregates.HistoryRequest{Principal: "carl", Limit: 1}
	var walked []aggregates.HistoryEvent
	var res commands.Result
	for e, err := range s.nats.History(ctx, "demo", carl, commands.MinSeq(demoSeq)) {
		if err != nil {
			t.Fatal(err)
		}
		if walked = append(walked, e); len(walked) == 1 {
			if res, err = s.nats.AssignRecord(ctx, "demo", "ann", "case", "case-2", "carl", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	later, err := s.nats.HistoryPage(ctx, "demo", aggregates.HistoryRequest{Principal: "carl", Limit: 1000}, commands.After(res))
	if err != nil || len(later.Events) != len(walked)+1 || walked[len(walked)-1].Seq >= res.Seq || later.Events[len(walked)].Seq != res.Seq {
		t.Fatalf("carl's history walked while assigned (%d events, last %d) against after (%d events, %v); the assignment at %d",
			len(walked), walked[len(walked)-1].Seq, len(later.Events), err, res.Seq)
	}

	// Read your own write: bob (limited, east) may not view inv-2 (west) until he is assigned
	// to it; the check that passes the command's Result sees the assignment.
	for i, tr := range s.transports() {
		c := tr.c
		id := []string{"inv-2", "inv-3"}[i]
		q := aggregates.CheckQuery{Principal: "bob", Permission: "invoice.view", Record: rec("invoice", id)}
		before, err := c.Check(ctx, "demo", q, commands.MinSeq(lastSeq(t, s.m)))
		if err != nil || before.Allowed {
			t.Fatalf("%s: bob on %s before the assignment: %+v %v", tr.name, id, before, err)
		}
		beforeTime := time.Now()
		time.Sleep(5 * time.Millisecond) // a time strictly between the two events
		res, err := c.AssignRecord(ctx, "demo", "ann", "invoice", id, "bob", "")
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.Check(ctx, "demo", q, commands.After(res))
		if err != nil || !after.Allowed || after.Seq < res.Seq || !slices.ContainsFunc(after.Events, func(e string) bool { return slices.Contains(res.Events, e) }) {
			t.Fatalf("%s: bob on %s after the assignment %+v: %+v %v", tr.name, id, res, after, err)
		}
		// as_of: before the assignment (as a sequence and as a time) he could not; at it he could.
		for _, at := range []commands.QueryOption{commands.AsOfSeq(before.Seq), commands.AsOfTime(beforeTime)} {
			then, err := c.Check(ctx, "demo", q, at, commands.After(res))
			if err != nil || then.Allowed || then.Seq >= res.Seq {
				t.Fatalf("%s: bob on %s as of before the assignment: %+v %v", tr.name, id, then, err)
			}
		}
		then, err := c.Check(ctx, "demo", q, commands.AsOfSeq(res.Seq))
		if err != nil || !then.Allowed || then.Seq != res.Seq {
			t.Fatalf("%s: bob on %s as of the assignment: %+v %v", tr.name, id, then, err)
		}
		old, err := c.VisiblePage(ctx, "demo", aggregates.VisibleQuery{Principal: "bob", Type: "invoice"}, commands.AsOfSeq(before.Seq))
		now, err2 := c.VisiblePage(ctx, "demo", aggregates.VisibleQuery{Principal: "bob", Type: "invoice"}, commands.After(res))
		if err != nil || err2 != nil || slices.Contains(old.IDs, id) || !slices.Contains(now.IDs, id) {
			t.Fatalf("%s: bob's invoices before %v and after %v the assignment of %s (%v, %v)", tr.name, old.IDs, now.IDs, id, err, err2)
		}
	}

	// A min_seq ahead of the stream answers not_caught_up after --query-wait; the client asks
	// again until the write arrives, and answers once it is applied.
	for _, tr := range s.transports() {
		ahead := lastSeq(t, s.m) + 1
		type answer struct {
			a   aggregates.CheckAnswer
			err error
		}
		done := make(chan answer, 1)
		go func() {
			a, err := tr.c.Check(ctx, "demo", aggregates.CheckQuery{Principal: "bob", Permission: "invoice.view"}, commands.MinSeq(ahead))
			done <- answer{a, err}
		}()
		time.Sleep(3 * s.cfg.QueryWait) // at least two not_caught_up answers
		select {
		case a := <-done:
			t.Fatalf("%s: min_seq %d answered before it was written: %+v %v", tr.name, ahead, a.a, a.err)
		default:
		}
		res, err := tr.c.SetAccessLevel(ctx, "demo", "ann", "sam", aggregates.LevelFull)
		if err != nil || res.Seq < ahead {
			t.Fatal(res, err)
		}
		if a := <-done; a.err != nil || a.a.Seq < ahead {
			t.Fatalf("%s: min_seq %d after the write at %d: %+v %v", tr.name, ahead, res.Seq, a.a, a.err)
		}
		if _, err := tr.c.SetAccessLevel(ctx, "demo", "ann", "sam", aggregates.LevelLimited); err != nil {
			t.Fatal(err)
		}
	}

	// Typed errors, at once (no retry), on both transports.
	billingNATS, err := commands.Dial("nats://"+s.cfg.NATSListen, nkeyOption(t, s.ids.billingSeed))
	if err != nil {
		t.Fatal(err)
	}
	defer billingNATS.Conn().Close()
	billing := map[string]*commands.Client{"nats": billingNATS, "http": commands.NewHTTPClient("http://"+s.cfg.HTTPListen, s.ids.billingToken, nil)}
	for _, tr := range s.transports() {
		cases := []struct {
			name string
			code aggregates.Code
			ask  func() error
		}{
			{"not found", aggregates.CodeNotFound, func() error {
				_, err := tr.c.Check(ctx, "demo", aggregates.CheckQuery{Principal: "nobody", Permission: "case.view"})
				return err
			}},
			{"invalid argument", aggregates.CodeInvalidArgument, func() error {
				_, err := tr.c.VisiblePage(ctx, "demo", aggregates.VisibleQuery{Principal: "bob", Type: "case", Limit: 5000})
				return err
			}},
			{"unknown permission", aggregates.CodeUnknownPermission, func() error {
				_, err := tr.c.Check(ctx, "demo", aggregates.CheckQuery{Principal: "bob", Permission: "case.fly"}, commands.MinSeq(demoSeq))
				return err
			}},
			{"forbidden", aggregates.CodeForbidden, func() error {
				_, err := billing[tr.name].Permissions(ctx, "demo", aggregates.PermissionsQuery{Principal: "bob"})
				return err
			}},
			{"unknown query", aggregates.CodeNotFound, func() error {
				return tr.c.Query(ctx, "demo", "fly", map[string]any{}, nil)
			}},
			{"iterator", aggregates.CodeNotFound, func() error {
				for _, err := range tr.c.Visible(ctx, "demo", aggregates.VisibleQuery{Principal: "nobody", Type: "case"}) {
					return err
				}
				return nil
			}},
		}
		for _, c := range cases {
			start := time.Now()
			err := c.ask()
			var e *aggregates.Error
			if !errors.As(err, &e) || e.Code != c.code || e.Message == "" {
				t.Errorf("%s: %s: %v, want an *aggregates.Error %s", tr.name, c.name, err, c.code)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("%s: %s: answered after %v (retried?)", tr.name, c.name, took)
			}
		}
	}
	// A client with no NATS connection refuses commands with a typed error.
	var e *aggregates.Error
	if _, err := billing["http"].AssignRole(ctx, "demo", "ann", "bob", "staff"); !errors.As(err, &e) || e.Code != aggregates.CodeInvalidArgument {
		t.Errorf("a command on an HTTP-only client: %v", err)
	}
}

// TestClientIteratesAcrossRestarts: a listing of 10^4 ids walked 100 a page over each transport;
// acld is stopped in the middle of each walk and started again (same ports, same data) a
// moment later. The iterator retries from its cursor and yields every id once, in order.
func TestClientIteratesAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("10^4 commands and two restarts")
	}
	s := startClientStack(t)
	ctx := context.Background()
	n := 10_000
	if raceEnabled {
		n = 2_000 // the same walk and restarts; the race detector makes 10^4 commands slow (go test ./... runs 10^4)
	}
	want := registerInvoices(t, s.nats, n) // cora, a contact of acme at level full, sees them all
	want = append(want, "inv-1", "inv-3")
	slices.Sort(want)
	q := aggregates.VisibleQuery{Principal: "cora", Type: "invoice", Limit: 100}
	for _, tr := range s.transports() {
		t.Run(tr.name, func(t *testing.T) {
			disconnects, failures, requests := s.disconnects.Load(), s.httpFailures.Load(), s.httpRequests.Load()
			var got []string
			var wait func()
			for id, err := range tr.c.Visible(ctx, "demo", q, commands.MinSeq(lastSeq(t, s.m))) {
				if err != nil {
					t.Fatalf("after %d ids: %v", len(got), err)
				}
				got = append(got, id)
				if len(got) == n/3 {
					wait = s.restart(t, 300*time.Millisecond)
				}
			}
			if wait == nil {
				t.Fatalf("the walk ended after %d ids, before the restart", len(got))
			}
			wait()
			if len(got) != len(want) || !slices.Equal(got, want) {
				t.Fatalf("walked %d ids, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			switch tr.name {
			case "nats":
				if s.disconnects.Load() == disconnects {
					t.Fatalf("the NATS connection was never lost: the restart tested nothing")
				}
			case "http":
				if s.httpFailures.Load() == failures {
					t.Fatalf("no HTTP request failed: the restart tested nothing")
				}
				if pages := s.httpRequests.Load() - requests; pages < int64(len(want)/q.Limit) {
					t.Fatalf("%d HTTP requests for %d ids at %d a page", pages, len(want), q.Limit)
				}
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// registerInvoices registers n invoices of client acme (as ann, 16 at once) and waits for the
// read model to apply them; it returns their ids.
func registerInvoices(t testing.TB, c *commands.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	var last atomic.Uint64
	errs := make(chan error, 16)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res, err := c.RegisterRecord(ctx, "demo", "ann", events.RecordBody{Type: "invoice", ID: ids[i], Client: "acme",
					Units: []events.UnitRef{{Kind: "location", ID: "east"}}})
				if err != nil {
					errs <- err
					return
				}
				for {
					old := last.Load()
					if res.Seq <= old || last.CompareAndSwap(old, res.Seq) {
						break
					}
				}
			}
		}()
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("big-%05d", i)
	}
	for i := range ids {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			t.Fatalf("register invoice %d: %v", i, err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if _, err := c.Check(ctx, "demo", aggregates.CheckQuery{Principal: "cora", Permission: "invoice.view"}, commands.MinSeq(last.Load())); err != nil {
		t.Fatal(err)
	}
	return ids
}
