package replay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestDuplicateLinksKeepHistory: a record whose links name one case twice, then none, must not
// take the case's count of linking records below what links to it. Before distinctRefs the update
// [zx zx] -> [] took 2 from the count [] -> [zx zx] had raised by 1, so when zb linked to zx later
// the count read 0, a change of zx's assignees skipped the scan for linking records, and zb's
// history missed the event that changed who may view it (found by round 18's review).
func TestDuplicateLinksKeepHistory(t *testing.T) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, 41).run(20)
	x := events.RecordRef{Type: "case", ID: "zx"}
	body := func(typ, id string, l ...events.RecordRef) events.RecordBody {
		return events.RecordBody{Type: typ, ID: id, Links: l}
	}
	admin := aggregatestest.Admin
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("case", "zx")})
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("invoice", "za", x)})
	s.d.must("acme", admin, &aggregates.UpdateRecord{RecordBody: body("invoice", "za", x, x)})
	s.d.must("acme", admin, &aggregates.UpdateRecord{RecordBody: body("invoice", "za")})
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("invoice", "zb", x)})
	seq := s.d.must("acme", admin, &aggregates.AssignRecord{Type: "case", ID: "zx", Principal: aggregatestest.Principals[0]})
	s.sync(t)
	h := historySeqs(t, s, HistoryRequest{Record: &events.RecordRef{Type: "invoice", ID: "zb"}})
	if why, ok := h[seq]; !ok || !strings.HasPrefix(why, whyLinkPrefix) {
		t.Fatalf("seq %d (zx assigned) missing from zb's history, or not for the link: %v", seq, h)
	}
}

// TestLinkCountDriftReported: an index whose counts of linking records differ from its reverse
// links, as a release before the duplicate-links fix wrote them, is found at open and logged
// with the command that mends it; an index as the writer keeps it is not (on a random history
// with links, a record linking twice and a record removed).
func TestLinkCountDriftReported(t *testing.T) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, 43).run(200)
	x := events.RecordRef{Type: "case", ID: "zx"}
	body := func(typ, id string, l ...events.RecordRef) events.RecordBody {
		return events.RecordBody{Type: typ, ID: id, Links: l}
	}
	admin := aggregatestest.Admin
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("case", "zx")})
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("invoice", "za", x, x)})
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("invoice", "zb", x)})
	s.d.must("acme", admin, &aggregates.RegisterRecord{RecordBody: body("invoice", "zc", x)})
	s.d.must("acme", admin, &aggregates.RemoveRecord{Type: "invoice", ID: "zc"})
	s.sync(t)
	seq := s.d.msgs[len(s.d.msgs)-1].Seq
	zx := recordStateKey("acme", "case", "zx")
	for _, tc := range []struct {
		name     string
		linkedBy int // zx's count written over the index's; -1: left as written
		want     int // records found
	}{
		{name: "as written", linkedBy: -1, want: 0},
		{name: "count 0, two records link", linkedBy: 0, want: 1},
		{name: "count 3, two records link", linkedBy: 3, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			if _, err := Rebuild(context.Background(), s.env.Store, dir, ModelAudit, seq, nil); err != nil {
				t.Fatal(err)
			}
			if tc.linkedBy >= 0 {
				setLinkedBy(t, dir, zx, tc.linkedBy)
			}
			a, err := OpenAudit(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			// Run as acld runs it, following the stream (which has nothing more for it).
			logged := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				a.Run(ctx, s.env.Store, slog.New(slog.NewTextHandler(logged, nil)))
			}()
			defer func() { cancel(); <-ran }()
			wantLog := "aclctl rebuild --model audit --replace " + dir
			if tc.want > 0 {
				eventstest.WaitFor(t, 30*time.Second, func() error {
					if got := logged.String(); !strings.Contains(got, wantLog) || !strings.Contains(got, "acme/case/zx") {
						return fmt.Errorf("logged %q; want the record and %q", got, wantLog)
					}
					return nil
				})
			}
			select {
			case <-a.scanned:
			case <-time.After(30 * time.Second):
				t.Fatal("the check at open did not end in 30 s")
			}
			d := a.drift
			if d.links < 3 {
				t.Fatalf("the check compared %d reverse links; want the history's (za and zb to zx at least)", d.links)
			}
			if d.records != tc.want {
				t.Fatalf("found %d records (first %q); want %d", d.records, d.first, tc.want)
			}
			if tc.want == 0 {
				cancel()
				<-ran // Run has returned: it logged what it would
				if got := logged.String(); strings.Contains(got, "rebuild") {
					t.Fatalf("logged %q for an index as the writer keeps it", got)
				}
			}
		})
	}
}

// syncBuffer is a log's output that the test reads while Run writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setLinkedBy writes the record state under k in the index in dir with count n, as a release
// before the duplicate-links fix could have left it.
func setLinkedBy(t *testing.T, dir string, k []byte, n int) {
	t.Helper()
	pb, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := pb.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	var rs recordState
	err = decodeState(v, &rs)
	closer.Close()
	if err != nil {
		t.Fatal(err)
	}
	rs.LinkedBy = n
	enc, _ := appendRecordState(nil, &rs)
	if err := pb.Set(k, enc, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
}
