package aggregates

import (
	"reflect"
	"testing"

	"github.com/acl-es/acl/events"
)

// TestRecordAfterJudgesAsApplied: the record recordAfter builds for a permission check is, in
// every field a decision reads, the record Apply makes of the body on a new state (with old's
// sequence and body event), and costs no map of its own: it was built as a kept state, a
// record and two maps, with a provenance entry per assignee (8 allocations for the body below,
// 3 now: the record and its sorted assignees and links).
func TestRecordAfterJudgesAsApplied(t *testing.T) {
	body := normalizedBody(events.RecordBody{Type: "case", ID: "c1", Client: "cl1", Owner: "ann",
		Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}, {Principal: "al", Relation: "reviewer"}},
		Links:     []events.RecordRef{{Type: "client", ID: "cl1"}}})
	old := NewRecord("case", "c1")
	old.Apply(events.Envelope{ID: "e1", Seq: 7}, events.RecordRegisteredV1{RecordBody: body})
	for _, tc := range []struct {
		name string
		old  *Record
		body events.RecordBody
	}{
		{"new", nil, body},
		{"update", old, body},
		{"client record", nil, normalizedBody(events.RecordBody{Type: "client", ID: "cl9", Client: "other"})},
	} {
		want := NewRecord(tc.body.Type, tc.body.ID)
		want.Apply(events.Envelope{}, events.RecordRegisteredV1{RecordBody: tc.body})
		if tc.old != nil {
			want.Seq, want.Prov["body"] = tc.old.Seq, tc.old.Prov["body"]
		}
		got := recordAfter(tc.old, tc.body)
		if got.Type != want.Type || got.ID != want.ID || got.Exists != want.Exists || got.Removed != want.Removed ||
			got.Client != want.Client || got.Owner != want.Owner || got.Seq != want.Seq ||
			!reflect.DeepEqual(got.Units, want.Units) || !reflect.DeepEqual(got.Assignees, want.Assignees) ||
			!reflect.DeepEqual(got.Links, want.Links) || !sameBody(got, want) {
			t.Fatalf("%s: recordAfter = %+v; Apply gives %+v", tc.name, got, want)
		}
		for k, v := range want.Prov {
			if got.Prov[k] != v {
				t.Fatalf("%s: provenance %q = %q; Apply gives %q", tc.name, k, got.Prov[k], v)
			}
		}
		if got.Commands.Len() != 0 {
			t.Fatalf("%s: remembers %v", tc.name, got.Commands)
		}
	}
	if n := testing.AllocsPerRun(100, func() { recordAfter(nil, body) }); n > 3 {
		t.Fatalf("recordAfter: %.0f allocations; want at most 3", n)
	}
}
