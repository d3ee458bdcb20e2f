package replay

import (
	"strings"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
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
