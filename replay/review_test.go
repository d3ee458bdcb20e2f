package replay

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// TestReviewEqualsPermissionsAndVisible: over a random history, the review at several moments,
// walked in pages of 2, lists every principal of the tenant once with what permissions answers
// at that moment, the number of ids visible answers for each type, the last event of its
// history up to the moment, and per type the same counts.
func TestReviewEqualsPermissionsAndVisible(t *testing.T) {
	s := startStack(t, Options{})
	h := newRandomHistory(s.d, 21)
	warmUp(s.d)
	if ok := h.run(200); ok < 60 {
		t.Fatalf("only %d of 200 random commands were accepted", ok)
	}
	s.sync(t)
	ctx := context.Background()
	for _, at := range []uint64{s.d.seq / 2, s.d.seq} {
		var got []aggregates.ReviewPrincipal
		var types []aggregates.ReviewType
		cursor := ""
		for {
			ans, err := s.svc.Review(ctx, "acme", aggregates.ReviewRequest{Limit: 2, Cursor: cursor, AsOf: &Moment{Seq: at}})
			if err != nil {
				t.Fatal(err)
			}
			if ans.Seq != at {
				t.Fatalf("review at %d answered seq %d", at, ans.Seq)
			}
			got = append(got, ans.Principals...)
			types = append(types, ans.Types...)
			if cursor = ans.NextCursor; cursor == "" {
				break
			}
		}
		e, release, err := s.svc.AsOf(ctx, "acme", Moment{Seq: at})
		if err != nil {
			t.Fatal(err)
		}
		m := s.d.oracleAt(at)["acme"]
		var want []string
		for id := range m.Principals {
			want = append(want, id)
		}
		slices.Sort(want)
		var ids []string
		for _, rp := range got {
			ids = append(ids, rp.Principal)
		}
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Fatalf("at %d the review lists %v, the tenant has %v", at, ids, want)
		}
		counted := map[string]map[string]int{}
		for _, rp := range got {
			p, err := e.Permissions(ctx, "acme", projections.PermissionsQuery{Principal: rp.Principal})
			if err != nil {
				t.Fatal(err)
			}
			if rp.Kind != p.Kind || rp.Level != p.Level || fmt.Sprint(rp.Roles) != fmt.Sprint(p.Roles) ||
				fmt.Sprint(keys(rp.Grants)) != fmt.Sprint(keys(p.Grants)) {
				t.Fatalf("at %d %s: review %+v, permissions %+v", at, rp.Principal, rp, p)
			}
			for _, typ := range viewTypes(p.Grants) {
				ids, err := aggregates.Visible(m, rp.Principal, typ, "view")
				if err != nil {
					t.Fatal(err)
				}
				if rp.Visible[typ] != len(ids) {
					t.Fatalf("at %d %s sees %d %s in the review, %d by visible", at, rp.Principal, rp.Visible[typ], typ, len(ids))
				}
				if len(ids) > 0 {
					if counted[typ] == nil {
						counted[typ] = map[string]int{}
					}
					counted[typ][rp.Principal] = len(ids)
				}
			}
			hist := historyOf(t, s, rp.Principal, at)
			switch {
			case len(hist) == 0 && rp.LastChange != nil, len(hist) > 0 && (rp.LastChange == nil || rp.LastChange.Event != hist[len(hist)-1]):
				t.Fatalf("at %d %s: last change %+v, history ends %v", at, rp.Principal, rp.LastChange, hist)
			}
		}
		for _, rt := range types {
			for _, v := range rt.Viewers {
				if counted[rt.Type][v.Principal] != v.Count {
					t.Fatalf("at %d type %s: %s sees %d in the review, %d by visible", at, rt.Type, v.Principal, v.Count, counted[rt.Type][v.Principal])
				}
				delete(counted[rt.Type], v.Principal)
			}
		}
		for typ, rest := range counted {
			if len(rest) > 0 {
				t.Fatalf("at %d type %s: viewers %v missing from the review", at, typ, rest)
			}
		}
		release()
	}
}

// historyOf lists the ids of p's history events up to seq.
func historyOf(t *testing.T, s *stack, p string, seq uint64) []string {
	var out []string
	req := HistoryRequest{Principal: p, To: &Moment{Seq: seq}, Limit: MaxHistoryLimit}
	for {
		h, err := s.svc.History(context.Background(), "acme", req)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h.Events {
			out = append(out, e.ID)
		}
		if req.Cursor = h.NextCursor; req.Cursor == "" {
			return out
		}
	}
}
