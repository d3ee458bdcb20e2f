package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// grantKeys is a principal's narrowed grants without their provenance: what it may do.
func grantKeys(m *aggregates.Memory, p string) []string {
	var out []string
	for _, g := range aggregates.NarrowedGrants(m.T, m.Principal(p), "") {
		out = append(out, grantKey(g))
	}
	return out
}

// ties is every tie of a principal to a record of the oracle: "type/id owner|relation".
func ties(m *aggregates.Memory, p string) []string {
	var out []string
	for k, r := range m.Records {
		if !r.Active() {
			continue
		}
		if r.Owner == p {
			out = append(out, k.Type+"/"+k.ID+" owner")
		}
		for _, a := range r.Assignees {
			if a.Principal == p {
				out = append(out, k.Type+"/"+k.ID+" "+a.Relation)
			}
		}
	}
	slices.Sort(out)
	return out
}

// allowed is who may view a record in the oracle (nil when it is not active).
func allowed(m *aggregates.Memory, rec events.RecordRef) []string {
	ps, err := aggregates.AllowedPrincipals(m, rec.Type+".view", rec)
	if err != nil {
		return nil
	}
	return ps
}

// recordSide reports whether a message is a change on the record side: a record's event, or a
// policy or feature change. Principal-side changes (its own events, its roles') are in the
// principals' histories instead.
func recordSide(m events.Message) bool {
	e := m.Events[0]
	return e.Aggregate.Kind == events.KindRecord || e.Type == events.PolicySet || e.Type == events.SubscriptionSet
}

func historySeqs(t *testing.T, s *stack, req HistoryRequest) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	for {
		ans, err := s.svc.History(context.Background(), "acme", req)
		if err != nil {
			t.Fatalf("history %+v: %v", req, err)
		}
		for _, e := range ans.Events {
			out[e.Seq] = e.Why
		}
		if req.Cursor = ans.NextCursor; req.Cursor == "" {
			return out
		}
	}
}

// TestHistoryOracle: over a random history, every event that changed a principal's narrowed
// grants or its ties to records is in its history, and every record-side event that changed who
// may view a record is in the record's history; and every "role:" reason names a role the
// principal held just before.
func TestHistoryOracle(t *testing.T) {
	for _, seed := range []uint64{7, 8, 9} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { historyOracle(t, seed) })
	}
}

func historyOracle(t *testing.T, seed uint64) {
	s := startStack(t, Options{})
	h := newRandomHistory(s.d, seed)
	h.run(400)
	s.sync(t)
	var recs []events.RecordRef
	for _, typ := range rhTypes {
		for _, id := range rhIDs {
			recs = append(recs, events.RecordRef{Type: typ, ID: id})
		}
	}
	principals := map[string]map[uint64]string{}
	records := map[events.RecordRef]map[uint64]string{}
	w := aggregates.World{}
	checked := 0
	for _, msg := range s.d.msgs {
		m := w["acme"]
		if m == nil {
			m = aggregates.NewMemory("acme")
		}
		beforeGrants, beforeTies, beforeAllowed := map[string][]string{}, map[string][]string{}, map[events.RecordRef][]string{}
		for _, p := range rhPrincipals {
			beforeGrants[p], beforeTies[p] = grantKeys(m, p), ties(m, p)
		}
		for _, r := range recs {
			beforeAllowed[r] = allowed(m, r)
		}
		heldBefore := map[string][]string{}
		for _, p := range rhPrincipals {
			if pr := m.Principal(p); pr != nil {
				heldBefore[p] = slices.Clone(pr.Roles)
			}
		}
		for _, e := range msg.Events {
			if err := w.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		m = w["acme"]
		for _, p := range rhPrincipals {
			if m.Principal(p) == nil {
				continue
			}
			if principals[p] == nil {
				principals[p] = historySeqs(t, s, HistoryRequest{Principal: p})
			}
			why, in := principals[p][msg.Seq]
			changed := !slices.Equal(beforeGrants[p], grantKeys(m, p)) || !slices.Equal(beforeTies[p], ties(m, p))
			if changed {
				checked++
				if !in {
					t.Errorf("seq %d (%s) changed what %s may do, but is not in its history", msg.Seq, msg.Events[0].Type, p)
				}
			}
			if role, ok := strings.CutPrefix(why, whyRolePrefix); ok && !slices.Contains(heldBefore[p], role) {
				t.Errorf("seq %d in %s's history because of role %s, which it did not hold", msg.Seq, p, role)
			}
		}
		if !recordSide(msg) {
			continue
		}
		for _, r := range recs {
			if now := allowed(m, r); now != nil && !slices.Equal(beforeAllowed[r], now) && beforeAllowed[r] != nil {
				checked++
				if records[r] == nil {
					records[r] = historySeqs(t, s, HistoryRequest{Record: &r})
				}
				if _, in := records[r][msg.Seq]; !in {
					t.Errorf("seq %d (%s on %s) changed who may view %v (%v -> %v), but is not in its history",
						msg.Seq, msg.Events[0].Type, msg.Subject, r, beforeAllowed[r], now)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d changes checked: the random history is too tame", checked)
	}
	t.Logf("%d changes checked over %d messages", checked, len(s.d.msgs))
}

// grantKey is a grant without its provenance.
func grantKey(g aggregates.GrantUse) string {
	return fmt.Sprintf("%s|%s|%s|%s|%v", g.Permission, g.Scope, g.Source, g.NarrowedFrom, g.Unscoped)
}
