package projections

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestBinaryStates: principals and records survive the binary form, equal states encode to
// equal bytes, and truncated bodies are errors, not panics.
func TestBinaryStates(t *testing.T) {
	r := &aggregates.Record{Type: "invoice", ID: "i1", Exists: true, Client: "c1",
		Units:     []events.UnitRef{{Kind: "location", ID: "east"}},
		Owner:     "bob",
		Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}, {Principal: "sam", Relation: "salesperson"}},
		Links:     []events.RecordRef{{Type: "case", ID: "c7"}},
		Prov:      map[string]string{"body": "e1", "assignee:bob|assignee": "e1", "assignee:sam|salesperson": "e2"},
		Seq:       42}
	p := &aggregates.Principal{ID: "bob", Exists: true, Removed: true, Kind: "staff", Email: "b@x.test",
		Units: []events.UnitRef{{Kind: "team", ID: "t1"}}, Roles: []string{"a", "b"}, Level: "limited",
		Grants: []events.Grant{{Permission: "case.view", Scope: "own"}}, Denied: []string{"x.view"},
		Prov: map[string]string{"registered": "e0", "level": "e3"}, Seq: 7}
	tests := []struct {
		name string
		v    any
		enc  func() ([]byte, error)
		dec  func([]byte) (any, error)
	}{
		{"record", r, func() ([]byte, error) { return encodeRecord(r) }, func(b []byte) (any, error) { return decodeRecord(b) }},
		{"empty record", &aggregates.Record{Type: "case", ID: "c", Prov: map[string]string{}},
			func() ([]byte, error) { return encodeRecord(aggregates.NewRecord("case", "c")) },
			func(b []byte) (any, error) { return decodeRecord(b) }},
		{"principal", p, func() ([]byte, error) { return encodePrincipal(p) }, func(b []byte) (any, error) { return decodePrincipal(b) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b1, err := tc.enc()
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := tc.enc()
			if !bytes.Equal(b1, b2) {
				t.Fatal("the same state encodes to different bytes")
			}
			got, err := tc.dec(b1)
			if err != nil || !reflect.DeepEqual(got, tc.v) {
				t.Fatalf("round trip: %+v (%v), want %+v", got, err, tc.v)
			}
			// A decoded state is a few objects: the state, its slices and provenance map,
			// and one text that all its strings are part of (it was 15-25).
			if n := testing.AllocsPerRun(20, func() { tc.dec(b1) }); n > 8 {
				t.Fatalf("a decode makes %.0f objects, want at most 8", n)
			}
			for n := 9; n < len(b1); n++ {
				if _, err := tc.dec(b1[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(b1))
				}
			}
		})
	}
}

// BenchmarkDecodeRecord decodes a record as the query engine and the projector read one from
// the read model: a record of the compare shape (units, two assignees, provenance).
func BenchmarkDecodeRecord(b *testing.B) {
	r := aggregates.NewRecord("invoice", "inv-00193003")
	r.Exists, r.Client, r.Owner, r.Seq = true, "client-0042", "p-0002301", 283528
	r.Units = []events.UnitRef{{Kind: "location", ID: "loc-007"}}
	r.Assignees = []events.Assignee{{Principal: "p-0002301", Relation: "salesperson"}, {Principal: "p-0004410", Relation: "assignee"}}
	r.Prov["body"] = "01a24b4c-008c-7e72-81cd-18e6046b7709"
	r.Prov["assignee:p-0002301|salesperson"] = "01a24b4c-008c-7e72-81cd-18e6046b7709"
	r.Prov["assignee:p-0004410|assignee"] = "01a24b4c-1d2e-7e72-81cd-18e6046b7710"
	v, _ := encodeRecord(r)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(v); err != nil {
			b.Fatal(err)
		}
	}
}
