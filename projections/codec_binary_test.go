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
		Commands:  map[string]aggregates.CommandResult{}, Seq: 42}
	p := &aggregates.Principal{ID: "bob", Exists: true, Removed: true, Kind: "staff", Email: "b@x.test",
		Units: []events.UnitRef{{Kind: "team", ID: "t1"}}, Roles: []string{"a", "b"}, Level: "limited",
		Grants: []events.Grant{{Permission: "case.view", Scope: "own"}}, Denied: []string{"x.view"},
		Prov: map[string]string{"registered": "e0", "level": "e3"}, Commands: map[string]aggregates.CommandResult{}, Seq: 7}
	tests := []struct {
		name string
		v    any
		enc  func() ([]byte, error)
		dec  func([]byte) (any, error)
	}{
		{"record", r, func() ([]byte, error) { return encodeRecord(r) }, func(b []byte) (any, error) { return decodeRecord(b) }},
		{"empty record", aggregates.NewRecord("case", "c"), func() ([]byte, error) { return encodeRecord(aggregates.NewRecord("case", "c")) },
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
			for n := 9; n < len(b1); n++ {
				if _, err := tc.dec(b1[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(b1))
				}
			}
		})
	}
}
