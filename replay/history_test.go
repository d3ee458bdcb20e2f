package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// line is what a test compares of a history event: its sequence, type and reason.
type line struct {
	Seq  uint64
	Type string
	Why  string
}

func (l line) String() string { return fmt.Sprintf("%d %s %q", l.Seq, l.Type, l.Why) }

func lines(evs []HistoryEvent) []line {
	out := []line{}
	for _, e := range evs {
		out = append(out, line{e.Seq, e.Type, e.Why})
	}
	return out
}

// historyScenario writes a small Trackops history touching bob and invoice i1 directly and
// indirectly, and returns the sequences of its steps.
func historyScenario(t *testing.T, s *stack) map[string]uint64 {
	d := s.d
	at := map[string]uint64{}
	at["tenant"] = d.tenant("acme", "trackops")
	at["bobReg"] = d.must("acme", "admin", &aggregates.RegisterPrincipal{Principal: "bob", Kind: "staff", Email: "bob@x.test"})
	at["bobRole"] = d.must("acme", "admin", &aggregates.AssignRole{Principal: "bob", Role: "staff"})
	d.must("acme", "admin", &aggregates.SetAccessLevel{Principal: "bob", Level: "limited"})
	at["bobLevel"] = d.lastOn("acl.events.acme.principal.bob") // the seat change is the tenant's
	at["carol"] = d.staff("acme", "carol", "full", "staff")
	at["caseReg"] = d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: "c1",
		Assignees: []events.Assignee{{Principal: "bob"}}}})
	at["invReg"] = d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "i1",
		Links: []events.RecordRef{{Type: "case", ID: "c1"}}}})
	at["caseAssign"] = d.must("acme", "admin", &aggregates.AssignRecord{Type: "case", ID: "c1", Principal: "carol"})
	at["clientReg"] = d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "client", ID: "cl1"}})
	at["inv2Reg"] = d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "i2",
		Client: "cl1", Assignees: []events.Assignee{{Principal: "carol"}}}})
	at["roleRevoke"] = d.must("acme", "admin", &aggregates.RevokeRolePermission{Role: "staff", Permission: "case.edit", Scope: "all"})
	pol := d.world["acme"].T.Policy
	pol.Implies = nil
	at["policy"] = d.must("acme", "admin", &aggregates.SetPolicy{Policy: &pol})
	at["bobRevoke"] = d.must("acme", "admin", &aggregates.RevokeRole{Principal: "bob", Role: "staff"})
	at["roleGrant"] = d.must("acme", "admin", &aggregates.GrantRolePermission{Role: "staff", Permission: "case.edit", Scope: "all"})
	at["caseUnassign"] = d.must("acme", "admin", &aggregates.UnassignRecord{Type: "case", ID: "c1", Principal: "bob"})
	feats := []string{"extra"}
	at["sub"] = d.must("acme", "system", &aggregates.SetSubscription{Features: &feats, Seats: map[string]int{}})
	at["seats"] = d.must("acme", "system", &aggregates.SetSubscription{Features: &feats, Seats: map[string]int{"full": 10}})
	at["caseRemove"] = d.must("acme", "admin", &aggregates.RemoveRecord{Type: "case", ID: "c1"})
	s.sync(t)
	return at
}

func TestHistory(t *testing.T) {
	s := startStack(t, Options{})
	at := historyScenario(t, s)
	bob := []line{
		{at["bobReg"], events.PrincipalRegistered, ""},
		{at["bobRole"], events.RoleAssigned, ""},
		{at["bobLevel"], events.AccessLevelSet, ""},
		{at["caseReg"], events.RecordRegistered, "record:case/c1"},
		{at["roleRevoke"], events.RolePermissionRevoked, "role:staff"},
		{at["policy"], events.PolicySet, "policy"},
		{at["bobRevoke"], events.RoleRevoked, ""},
		{at["caseUnassign"], events.RecordUnassigned, "record:case/c1"},
		{at["sub"], events.SubscriptionSet, "subscription"},
	}
	inv := []line{
		{at["invReg"], events.RecordRegistered, ""},
		{at["caseAssign"], events.RecordAssigned, "link:case/c1"},
		{at["policy"], events.PolicySet, "policy"},
		{at["caseUnassign"], events.RecordUnassigned, "link:case/c1"},
		{at["sub"], events.SubscriptionSet, "subscription"},
		{at["caseRemove"], events.RecordRemoved, "link:case/c1"},
	}
	// Whoever may view an invoice may view its client (TO-4f): the invoice's changes are the
	// client's history too, while the policy has that implication.
	client := []line{
		{at["clientReg"], events.RecordRegistered, ""},
		{at["inv2Reg"], events.RecordRegistered, "client:invoice/i2"},
		{at["policy"], events.PolicySet, "policy"},
		{at["sub"], events.SubscriptionSet, "subscription"},
	}
	// A principal's record: its own events (not its roles') and the tenant-wide changes.
	carolRecord := []line{}
	for _, m := range s.d.msgs {
		if m.Subject == "acl.events.acme.principal.carol" {
			carolRecord = append(carolRecord, line{m.Seq, m.Events[0].Type, ""})
		}
	}
	carolRecord = append(carolRecord, line{at["policy"], events.PolicySet, "policy"}, line{at["sub"], events.SubscriptionSet, "subscription"})
	m := func(seq uint64) *Moment { return &Moment{Seq: seq} }
	tests := []struct {
		name string
		req  HistoryRequest
		want []line
	}{
		{"principal", HistoryRequest{Principal: "bob"}, bob},
		{"record", HistoryRequest{Record: &events.RecordRef{Type: "invoice", ID: "i1"}}, inv},
		{"client by implication", HistoryRequest{Record: &events.RecordRef{Type: "client", ID: "cl1"}}, client},
		{"principal record", HistoryRequest{Record: &events.RecordRef{Type: "user", ID: "carol"}}, carolRecord},
		{"from to", HistoryRequest{Principal: "bob", From: m(at["caseReg"]), To: m(at["bobRevoke"])}, bob[3:7]},
		{"as_of caps", HistoryRequest{Principal: "bob", AsOf: m(at["policy"])}, bob[:6]},
		{"to before any", HistoryRequest{Principal: "bob", To: m(at["tenant"])}, []line{}},
		{"cursor", HistoryRequest{Principal: "bob", Cursor: fmt.Sprint(at["policy"])}, bob[6:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := s.svc.History(context.Background(), "acme", tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := lines(ans.Events); !slices.Equal(got, tc.want) {
				t.Errorf("history:\n got %v\nwant %v", got, tc.want)
			}
			if ans.NextCursor != "" {
				t.Errorf("next_cursor %q on the only page", ans.NextCursor)
			}
		})
	}
}

func TestHistoryPages(t *testing.T) {
	s := startStack(t, Options{})
	historyScenario(t, s)
	all, err := s.svc.History(context.Background(), "acme", HistoryRequest{Principal: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 4, 100} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []HistoryEvent
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(all.Events) {
					t.Fatalf("more pages than events")
				}
				ans, err := s.svc.History(context.Background(), "acme", HistoryRequest{Principal: "bob", Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if len(ans.Events) > limit {
					t.Fatalf("page of %d events, limit %d", len(ans.Events), limit)
				}
				got = append(got, ans.Events...)
				if cursor = ans.NextCursor; cursor == "" {
					break
				}
			}
			if !slices.Equal(lines(got), lines(all.Events)) {
				t.Errorf("pages:\n got %v\nwant %v", lines(got), lines(all.Events))
			}
		})
	}
}

func TestHistoryErrors(t *testing.T) {
	s := startStack(t, Options{Wait: 200 * time.Millisecond})
	historyScenario(t, s)
	tests := []struct {
		name   string
		tenant string
		req    HistoryRequest
		code   aggregates.Code
	}{
		{"neither", "acme", HistoryRequest{}, aggregates.CodeInvalidArgument},
		{"both", "acme", HistoryRequest{Principal: "bob", Record: &events.RecordRef{Type: "case", ID: "c1"}}, aggregates.CodeInvalidArgument},
		{"bad id", "acme", HistoryRequest{Principal: "b.b"}, aggregates.CodeInvalidArgument},
		{"limit", "acme", HistoryRequest{Principal: "bob", Limit: 1001}, aggregates.CodeInvalidArgument},
		{"negative limit", "acme", HistoryRequest{Principal: "bob", Limit: -1}, aggregates.CodeInvalidArgument},
		{"cursor", "acme", HistoryRequest{Principal: "bob", Cursor: "bob"}, aggregates.CodeInvalidArgument},
		{"no tenant", "nope", HistoryRequest{Principal: "bob"}, aggregates.CodeNotFound},
		{"no principal", "acme", HistoryRequest{Principal: "dave"}, aggregates.CodeNotFound},
		{"no record", "acme", HistoryRequest{Record: &events.RecordRef{Type: "case", ID: "c9"}}, aggregates.CodeNotFound},
		{"principal of another kind", "acme", HistoryRequest{Record: &events.RecordRef{Type: "employee", ID: "bob"}}, aggregates.CodeNotFound},
		{"future sequence", "acme", HistoryRequest{Principal: "bob", To: &Moment{Seq: 1 << 40}}, aggregates.CodeNotCaughtUp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.svc.History(context.Background(), tc.tenant, tc.req)
			var e *aggregates.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if strings.TrimSpace(e.Message) == "" {
				t.Errorf("error without a message")
			}
		})
	}
}
