package events_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"testing"

	"github.com/acl-es/acl/events"
)

// samples holds one event of every type with every field set, so that a field lost in
// encoding or decoding shows.
func samples() map[string]events.Data {
	body := events.RecordBody{Type: "invoice", ID: "inv-1", Client: "c1",
		Units:     []events.UnitRef{{Kind: "location", ID: "east"}},
		Owner:     "bob",
		Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}},
		Links:     []events.RecordRef{{Type: "case", ID: "case-7"}}}
	role := events.RoleDef{Role: "viewer", Grants: []events.Grant{{Permission: "invoice.view", Scope: "all"}},
		Exclusive: true, RequiresFeature: "f", PrincipalKinds: []string{"staff"}}
	policy := events.Policy{Permissions: []string{"invoice.view"}, Unscoped: []string{"report.view"},
		Limited: []events.LimitedException{{Permission: "case.view", Kinds: []string{"client_contact"}}},
		Links:   []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{"staff"}}},
		Implies: []events.Implication{{Permission: "case.view", Field: "client", Grants: "client.view"}}}
	unit := events.UnitRef{Kind: "team", ID: "t1"}
	grant := events.Grant{Permission: "invoice.view", Scope: "assigned"}
	return map[string]events.Data{
		events.TenantCreated:         events.TenantCreatedV1{Preset: "trackops", AdminRole: "administrator", Policy: policy, Roles: []events.RoleDef{role}},
		events.SubscriptionSet:       events.SubscriptionSetV1{Features: []string{"technician_users"}, Seats: map[string]int{"full": 5}},
		events.UnitDefined:           events.UnitDefinedV1{Unit: unit},
		events.RoleDefined:           events.RoleDefinedV1{RoleDef: role},
		events.RoleDeleted:           events.RoleDeletedV1{Role: "viewer"},
		events.RolePermissionGranted: events.RolePermissionGrantedV1{Role: "viewer", Grant: grant},
		events.RolePermissionRevoked: events.RolePermissionRevokedV1{Role: "viewer", Grant: grant},
		events.PolicySet:             events.PolicySetV1{Policy: policy},
		events.SeatChanged:           events.SeatChangedV1{Principal: "bob", From: "disabled", To: "full"},
		events.PrincipalRegistered:   events.PrincipalRegisteredV1{Principal: "bob", Kind: "client_contact", Email: "b@acme.test", Client: "c1", Units: []events.UnitRef{unit}},
		events.EmailSet:              events.EmailSetV1{Email: "b@acme.test"},
		events.RoleAssigned:          events.RoleAssignedV1{Role: "viewer"},
		events.RoleRevoked:           events.RoleRevokedV1{Role: "viewer"},
		events.AccessLevelSet:        events.AccessLevelSetV1{Level: "limited", From: "full"},
		events.PermissionGranted:     events.PermissionGrantedV1{Grant: grant},
		events.PermissionDenied:      events.PermissionDeniedV1{Permission: "invoice.view"},
		events.PermissionCleared:     events.PermissionClearedV1{Permission: "invoice.view"},
		events.UnitJoined:            events.UnitJoinedV1{Unit: unit},
		events.UnitLeft:              events.UnitLeftV1{Unit: unit},
		events.PrincipalRemoved:      events.PrincipalRemovedV1{},
		events.RecordRegistered:      events.RecordRegisteredV1{RecordBody: body},
		events.RecordUpdated:         events.RecordUpdatedV1{RecordBody: body},
		events.RecordAssigned:        events.RecordAssignedV2{Principal: "bob", Relation: "salesperson"},
		events.RecordUnassigned:      events.RecordUnassignedV2{Principal: "bob", Relation: "salesperson"},
		events.RecordRemoved:         events.RecordRemovedV1{},
	}
}

// TestRoundTripEveryType encodes a sample of every type in AllTypes into an envelope, through
// JSON as it is stored, and decodes it back.
func TestRoundTripEveryType(t *testing.T) {
	all := samples()
	for _, typ := range events.AllTypes {
		t.Run(typ, func(t *testing.T) {
			d, ok := all[typ]
			if !ok {
				t.Fatalf("no sample for %s: add one to samples()", typ)
			}
			if d.EventType() != typ {
				t.Fatalf("sample's EventType() = %s", d.EventType())
			}
			e := principalEnv(t, "acme", "bob", "c1", d)
			if e.Type != typ || e.Schema != d.SchemaVersion() {
				t.Fatalf("envelope type %s schema %d", e.Type, e.Schema)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			raw, err := json.Marshal([]events.Envelope{e})
			if err != nil {
				t.Fatal(err)
			}
			var back []events.Envelope
			if err := json.Unmarshal(raw, &back); err != nil || len(back) != 1 {
				t.Fatalf("unmarshal %s: %v", raw, err)
			}
			if !reflect.DeepEqual(back[0], e) {
				t.Fatalf("envelope after JSON %+v; want %+v", back[0], e)
			}
			got, err := events.Decode(back[0])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Fatalf("decoded %#v; want %#v", got, d)
			}
		})
	}
	if len(all) != len(events.AllTypes) {
		t.Errorf("%d samples for %d types", len(all), len(events.AllTypes))
	}
}

// undecoded are type constants of types.go that have no data type or decoder yet. Reported to
// the lead: principal_id_reserved is declared but has no struct, no Decode case and is not in
// AllTypes. The test below fails when such a type gets a decoder, so this list stays true.
var undecoded = map[string]bool{}

// TestAllTypesIsComplete: every event type constant declared in types.go is in AllTypes, so
// the round trip above covers it.
func TestAllTypesIsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, typ := range events.AllTypes {
		if listed[typ] {
			t.Errorf("%s twice in AllTypes", typ)
		}
		listed[typ] = true
	}
	declared := 0
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				typ, _ := strconv.Unquote(lit.Value)
				declared++
				_, err := events.Decode(events.Envelope{Type: typ, Data: []byte("{}")})
				switch {
				case undecoded[typ] && err == nil:
					t.Errorf("%s decodes now: add it to AllTypes and samples, remove it from undecoded", typ)
				case undecoded[typ]:
				case !listed[typ]:
					t.Errorf("%s is declared in types.go but not in AllTypes", typ)
				}
			}
		}
	}
	if declared < len(events.AllTypes) {
		t.Errorf("found %d constants in types.go, fewer than AllTypes' %d", declared, len(events.AllTypes))
	}
}

func TestUpcastSchema1(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		schema int
		data   string
		want   events.Data
	}{
		{"assigned v1 without relation", events.RecordAssigned, 1, `{"principal":"bob"}`,
			events.RecordAssignedV2{Principal: "bob", Relation: "assignee"}},
		{"unassigned v1 without relation", events.RecordUnassigned, 1, `{"principal":"bob"}`,
			events.RecordUnassignedV2{Principal: "bob", Relation: "assignee"}},
		{"assigned v2 keeps its relation", events.RecordAssigned, 2, `{"principal":"bob","relation":"salesperson"}`,
			events.RecordAssignedV2{Principal: "bob", Relation: "salesperson"}},
	}
	for _, tc := range tests {
		e := principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "r"})
		e.Type, e.Schema, e.Data = tc.typ, tc.schema, json.RawMessage(tc.data)
		got, err := events.Decode(e)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Decode = %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		data string
	}{
		{"unknown type", "role_assignd", `{}`},
		{"empty type", "", `{}`},
		{"wrong field type", events.RoleAssigned, `{"role":1}`},
		{"not an object", events.RoleAssigned, `[1]`},
		{"not JSON", events.SeatChanged, `{"principal":`},
	}
	for _, tc := range tests {
		_, err := events.Decode(events.Envelope{ID: "x", Type: tc.typ, Data: json.RawMessage(tc.data)})
		if !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: Decode = %v; want ErrInvalid", tc.name, err)
		}
	}
}
