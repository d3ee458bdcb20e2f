package events

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fastTypes are the types fastData must decode when they come as json.Marshal writes them.
var fastTypes = []string{
	UnitDefined, RoleDeleted, RolePermissionGranted, RolePermissionRevoked, SeatChanged,
	PrincipalRegistered, EmailSet, RoleAssigned, RoleRevoked, AccessLevelSet, PermissionGranted,
	PermissionDenied, PermissionCleared, UnitJoined, UnitLeft, PrincipalRemoved,
	RecordRegistered, RecordUpdated, RecordAssigned, RecordUnassigned, RecordRemoved,
}

// zeroData is the zero value of typ's data (encoding/json's decoding of {}).
func zeroData(t testing.TB, typ string) Data {
	d, err := decodeStd(Envelope{Type: typ, Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return d
}

// fill sets every field of v, recursively: strings to distinct values, lists to n elements,
// maps to one entry. n = 0 leaves lists empty but not nil; n < 0 leaves them nil.
func fill(v reflect.Value, n int, next *int) {
	switch v.Kind() {
	case reflect.String:
		*next++
		v.SetString(fmt.Sprintf("s%d-é", *next))
	case reflect.Int:
		*next++
		v.SetInt(int64(*next))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n, next)
		}
	case reflect.Slice:
		if n < 0 {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(v.Index(i), n, next)
		}
	case reflect.Map:
		if n < 0 {
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n, next)
		fill(e, n, next)
		v.SetMapIndex(k, e)
	}
}

// agree checks that fastData, when it accepts raw as typ, gives what encoding/json gives, and
// that Decode gives the same either way. It reports whether fastData accepted.
func agree(t *testing.T, typ string, schema int, raw []byte) bool {
	t.Helper()
	fast, ok := fastData(typ, raw)
	if !ok {
		return false
	}
	e := Envelope{ID: "e", Type: typ, Schema: schema, Data: raw}
	std, err := decodeStd(e)
	if err != nil {
		t.Fatalf("fastData accepted %s %q, encoding/json refuses it: %v", typ, raw, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%s %q: fastData %#v; encoding/json %#v", typ, raw, fast, std)
	}
	if got, err := Decode(e); err != nil || !reflect.DeepEqual(got, upcast(schema, std)) {
		t.Fatalf("%s %q: Decode %#v, %v; want %#v", typ, raw, got, err, upcast(schema, std))
	}
	return true
}

// TestFastDataAgrees: for every event type, its data with every field set, with empty lists
// and with nil lists (null), as json.Marshal writes it: fastData accepts the frequent types
// and agrees with encoding/json on each; for the others it gives up.
func TestFastDataAgrees(t *testing.T) {
	for _, typ := range AllTypes {
		for _, n := range []int{2, 1, 0, -1} {
			v := reflect.New(reflect.TypeOf(zeroData(t, typ))).Elem()
			next := 0
			fill(v, n, &next)
			raw, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatal(err)
			}
			for _, schema := range []int{1, 2} {
				ok := agree(t, typ, schema, raw)
				want := strings.Contains(strings.Join(fastTypes, ","), typ) && !strings.Contains(string(raw), `\u`)
				if ok != want {
					t.Errorf("%s %s: fastData ok = %v; want %v", typ, raw, ok, want)
				}
			}
		}
		// The zero value: absent keys.
		if !agree(t, typ, 1, []byte(`{}`)) && strings.Contains(strings.Join(fastTypes, ","), typ) {
			t.Errorf("%s: fastData refused {}", typ)
		}
	}
}

// TestFastDataGivesUp: shapes fastData leaves to encoding/json (which merges duplicate keys,
// matches keys without regard to case, ignores unknown keys, unescapes); where it accepts, it
// must agree.
func TestFastDataGivesUp(t *testing.T) {
	for _, tc := range []struct {
		typ, raw string
		fastOK   bool
	}{
		{RoleAssigned, `{"role":"r"}`, true},
		{RoleAssigned, ` {"role" : "r" } `, true},
		{RoleAssigned, `{"role":null}`, true},
		{RoleAssigned, `{"role":"r","role":"s"}`, false},
		{RoleAssigned, `{"Role":"r"}`, false},
		{RoleAssigned, `{"role":"r","x":1}`, false},
		{RoleAssigned, `{"role":"\u0072"}`, false},
		{RoleAssigned, "{\"role\":\"\xff\"}", false},
		{RoleAssigned, `{"role":1}`, false},
		{RoleAssigned, `{"role":"r"} x`, false},
		{RoleAssigned, `{"role":"r"}{}`, false},
		{RoleAssigned, `{"role":"r",}`, false},
		{RoleAssigned, `["role"]`, false},
		{RoleAssigned, `null`, false},
		{RoleAssigned, ``, false},
		{UnitJoined, `{"unit":{"kind":"team"},"unit":{"id":"t"}}`, false},
		{UnitJoined, `{"unit":{"kind":"team","kind":"x"}}`, false},
		{UnitJoined, `{"unit":null}`, true},
		{UnitJoined, `{"unit":[]}`, false},
		{RecordRegistered, `{"units":[]}`, true},
		{RecordRegistered, `{"units":null}`, true},
		{RecordRegistered, `{"units":[null]}`, false},
		{RecordRegistered, `{"units":[{"kind":"a","id":"b"},{}]}`, true},
		{RecordRegistered, `{"units":[{"kind":"a","id":"b"},]}`, false},
		{RecordRegistered, `{"units":{}}`, false},
		{RecordRegistered, `{"links":[{"type":"case","id":"c"}],"assignees":[{"principal":"p","relation":"r"}]}`, true},
		{RecordRegistered, `{"links":[{"type":"case","id":"c","x":"y"}]}`, false},
		{PrincipalRemoved, `{}`, true},
		{PrincipalRemoved, `{"x":1}`, false},
		{RecordRemoved, `{ }`, true},
		{RecordAssigned, `{"principal":"p"}`, true},
		{TenantCreated, `{}`, false},
		{"no_such_type", `{}`, false},
	} {
		t.Run(tc.typ+" "+tc.raw, func(t *testing.T) {
			ok := agree(t, tc.typ, 1, []byte(tc.raw))
			if ok != tc.fastOK {
				t.Errorf("fastData ok = %v; want %v", ok, tc.fastOK)
			}
		})
	}
}

// FuzzFastData: on any data and any event type, fastData either gives up or agrees with
// encoding/json.
func FuzzFastData(f *testing.F) {
	for i, typ := range AllTypes {
		v := reflect.New(reflect.TypeOf(zeroData(f, typ))).Elem()
		next := 0
		fill(v, 1+i%2, &next)
		raw, _ := json.Marshal(v.Interface())
		f.Add(uint8(i), raw)
	}
	f.Fuzz(func(t *testing.T, typ uint8, raw []byte) {
		agree(t, AllTypes[int(typ)%len(AllTypes)], 1, raw)
	})
}

func BenchmarkDecodeData(b *testing.B) {
	body := RecordRegisteredV1{RecordBody: RecordBody{Type: "invoice", ID: "invoice000123", Client: "cl00042",
		Units: []UnitRef{{Kind: "location", ID: "l7"}}, Owner: "p17",
		Assignees: []Assignee{{Principal: "p99", Relation: "salesperson"}}, Links: []RecordRef{{Type: "case", ID: "case000122"}}}}
	raw, _ := json.Marshal(body)
	e := Envelope{ID: "e", Type: RecordRegistered, Schema: 1, Data: raw}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeStd(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
