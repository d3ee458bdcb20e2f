package aggregates

import (
	"maps"
	"slices"
	"testing"

	"github.com/acl-es/acl/events"
)

func TestVisible(t *testing.T) {
	w := trackopsWorld(t)
	w.rec(events.RecordBody{Type: "invoice", ID: "inv-0", Client: "c1", Units: []events.UnitRef{unit(UnitLocation, "east")}})
	w.record("invoice", "inv-0", events.RecordRemovedV1{})
	cases := []struct {
		principal, typ string
		want           []string
	}{
		{"fred", "invoice", []string{"inv-1", "inv-2", "inv-3"}},
		{"lou", "invoice", []string{"inv-1"}},
		{"lim", "invoice", []string{"inv-1", "inv-3"}}, // both link case-7
		{"sal", "invoice", []string{"inv-2"}},
		{"cc1", "invoice", []string{"inv-1", "inv-3"}},
		{"cc1l", "invoice", []string{"inv-3"}},
		{"limx", "client", []string{"c1"}},
		{"lim", "client", []string{"c1", "c2"}},
		{"lou", "user", []string{"alice", "dis", "fred", "lim", "limx", "lou", "noinv", "sal"}},
		{"cc1", "user", []string{}},
		{"cc1", "client_contact", []string{"cc1", "cc1l"}},
		{"dis", "invoice", []string{}},
	}
	for _, c := range cases {
		got, err := Visible(w.m, c.principal, c.typ, "view")
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !slices.Equal(got, c.want) {
			t.Errorf("Visible(%s, %s) = %#v, want %v", c.principal, c.typ, got, c.want)
		}
	}
	r := newWorld(t, "reconpro")
	r.units(unit(UnitTeam, "t1"), unit(UnitTeam, "t2"))
	r.person("tia", KindStaff, "", LevelFull, []string{"team_administrator"}, unit(UnitTeam, "t1"))
	if got, _ := Visible(r.m, "tia", "team", "edit"); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("Visible(tia, team, edit) = %v, want [t1]", got)
	}
	if _, err := Visible(w.m, "fred", "invoice", "veiw"); ErrorCode(err) != CodeUnknownPermission {
		t.Errorf("unknown action: %v", err)
	}
	if _, err := Visible(w.m, "nobody", "invoice", "view"); ErrorCode(err) != CodeNotFound {
		t.Errorf("unknown principal: %v", err)
	}
}

func TestAllowedPrincipals(t *testing.T) {
	w := trackopsWorld(t)
	got, err := AllowedPrincipals(w.m, "invoice.view", events.RecordRef{Type: "invoice", ID: "inv-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice", "cc1", "fred", "lim", "limx", "lou", "wes"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := AllowedPrincipals(w.m, "invoice.view", events.RecordRef{Type: "invoice", ID: "none"}); ErrorCode(err) != CodeNotFound {
		t.Errorf("unknown record: %v", err)
	}
	if _, err := AllowedPrincipals(w.m, "invoice.veiw", events.RecordRef{Type: "invoice", ID: "inv-1"}); ErrorCode(err) != CodeUnknownPermission {
		t.Errorf("unknown permission: %v", err)
	}
}

// TestOraclesAgree: p is among the principals allowed typ.view on r iff r is visible to p; the
// two oracles enumerate differently (records of a principal, principals of a record).
func TestOraclesAgree(t *testing.T) {
	w := trackopsWorld(t)
	for _, typ := range []string{"invoice", "case", "client", "expense", "user", "client_contact"} {
		visible := map[string][]string{}
		for id := range w.m.Principals {
			ids, err := Visible(w.m, id, typ, "view")
			if err != nil {
				t.Fatal(err)
			}
			visible[id] = ids
		}
		for _, rid := range candidates(w.m, typ) {
			allowed, err := AllowedPrincipals(w.m, typ+".view", events.RecordRef{Type: typ, ID: rid})
			if err != nil {
				t.Fatal(err)
			}
			for id, ids := range visible {
				if slices.Contains(allowed, id) != slices.Contains(ids, rid) {
					t.Errorf("%s %s and %s: allowed %v, visible %v", typ, rid, id, allowed, ids)
				}
			}
		}
	}
}

// BenchmarkCheck measures the hot path of the query engine: an allowed check through a link
// rule and a refused one.
func BenchmarkCheck(b *testing.B) {
	w := trackopsWorld(b)
	inv1, inv2 := ref("invoice", "inv-1"), ref("invoice", "inv-2")
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := Check(w.m, "lim", "invoice.view", inv1); !d.Allowed {
			b.Fatal("refused")
		}
		if d, _ := Check(w.m, "lim", "invoice.view", inv2); d.Allowed {
			b.Fatal("allowed")
		}
	}
}

// TestAllowedAgreesWithCheck: Allowed answers what Check answers (allowed or not, and the same
// error) for every principal, permission of the policy and record of three worlds, and without
// a record. Fails when Allowed answers a refusal, an implication or an error otherwise than
// Check (tried: allowing every refused check).
func TestAllowedAgreesWithCheck(t *testing.T) {
	r := newWorld(t, "reconpro")
	r.units(unit(UnitTeam, "t1"), unit(UnitTeam, "t2"))
	r.person("tia", KindStaff, "", LevelFull, []string{"team_administrator"}, unit(UnitTeam, "t1"))
	allowed := 0
	for _, m := range []*Memory{trackopsWorld(t).m, probuildWorld(t).m, r.m} {
		recs := []*events.RecordRef{nil}
		for ref := range m.Records {
			recs = append(recs, &ref)
		}
		for _, p := range m.Principals {
			ref := events.RecordRef{Type: PrincipalRecordType(p.Kind), ID: p.ID}
			recs = append(recs, &ref)
		}
		recs = append(recs, &events.RecordRef{Type: "invoice", ID: "no-such"})
		principals := slices.Sorted(maps.Keys(m.Principals))
		principals = append(principals, "nobody")
		for _, p := range principals {
			for _, perm := range append(slices.Clone(m.T.Policy.Permissions), "invoice.veiw") {
				for _, rec := range recs {
					d, cerr := Check(m, p, perm, rec)
					ok, aerr := Allowed(m, p, perm, rec)
					if ok != d.Allowed || ErrorCode(aerr) != ErrorCode(cerr) || (aerr == nil) != (cerr == nil) {
						t.Fatalf("%s %s %v: Allowed %v, %v; Check %v, %v", p, perm, rec, ok, aerr, d.Allowed, cerr)
					}
					if ok {
						allowed++
					}
				}
			}
		}
	}
	if allowed < 100 {
		t.Fatalf("only %d allowed checks: the worlds do not exercise Allowed", allowed)
	}
}

// BenchmarkAllowed is BenchmarkCheck answering Allowed alone.
func BenchmarkAllowed(b *testing.B) {
	w := trackopsWorld(b)
	inv1, inv2 := ref("invoice", "inv-1"), ref("invoice", "inv-2")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := Allowed(w.m, "lim", "invoice.view", inv1); !ok {
			b.Fatal("refused")
		}
		if ok, _ := Allowed(w.m, "lim", "invoice.view", inv2); ok {
			b.Fatal("allowed")
		}
	}
}
