package aggregates

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// fastKinds are the commands fastBody reads.
var fastKinds = []string{"RegisterRecord", "RegisterPrincipal", "AssignRole", "SetAccessLevel"}

// agreeBody checks that DecodeBody answers what DecodeStrict answers into a fresh command
// (the same command, or a refusal with the same code and message), and reports whether
// fastBody accepted the body.
func agreeBody(t *testing.T, name string, body []byte) bool {
	t.Helper()
	want := NewCommand(name)
	werr := DecodeStrict("body", body, want)
	got, gerr := DecodeBody("body", name, body)
	switch {
	case (werr == nil) != (gerr == nil):
		t.Fatalf("%s %q: DecodeBody error %v; DecodeStrict %v", name, body, gerr, werr)
	case werr != nil:
		if werr.Code != gerr.Code || werr.Message != gerr.Message {
			t.Fatalf("%s %q: DecodeBody refused %s %q; DecodeStrict %s %q", name, body, gerr.Code, gerr.Message, werr.Code, werr.Message)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("%s %q: DecodeBody %#v; DecodeStrict %#v", name, body, got, want)
	}
	fast := NewCommand(name)
	ok := fastBody(body, fast)
	if ok && (werr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("%s %q: fastBody accepted %#v; DecodeStrict %#v, %v", name, body, fast, want, werr)
	}
	return ok
}

// filled is a command of kind name with every field set (lists of n elements; n = 0 empty,
// n < 0 nil), as json.Marshal writes it.
func filled(t testing.TB, name string, n int) []byte {
	v := reflect.ValueOf(NewCommand(name)).Elem()
	next := 0
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			next++
			v.SetString(fmt.Sprintf("s%d-é", next))
		case reflect.Bool:
			v.SetBool(next%2 == 0)
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i))
				}
			}
		case reflect.Slice:
			if n < 0 {
				return
			}
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fill(v.Index(i))
			}
		}
	}
	fill(v)
	b, err := json.Marshal(v.Addr().Interface())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeBodyFast: the bodies an import sends (every field set, lists with elements, empty
// and null, as json.Marshal and aclbench write them) are read by fastBody, and DecodeBody agrees
// with DecodeStrict on each. Fails without fastBody (nothing accepted).
func TestDecodeBodyFast(t *testing.T) {
	for _, name := range fastKinds {
		for _, n := range []int{2, 1, 0, -1} {
			body := filled(t, name, n)
			if !agreeBody(t, name, body) {
				t.Errorf("%s: fastBody gave up on %s", name, body)
			}
		}
		if !agreeBody(t, name, []byte(`{}`)) {
			t.Errorf("%s: fastBody gave up on {}", name)
		}
	}
	for _, tc := range []struct{ name, body string }{
		{"RegisterRecord", `{"command_id":"eca4880d-71e8-5af6-8d6e-04209f467969","actor":"admin","type":"client","id":"client-00000","units":[{"kind":"location","id":"loc-000"}],"assignees":null,"links":null}`},
		{"RegisterPrincipal", `{"command_id":"d7f6c94b-ec27-548f-b10d-fd3039e0a273","actor":"admin","principal":"p-0000001","kind":"staff","email":"p-0000001@bench-compare-0.test","client":"","units":[{"kind":"location","id":"loc-004"},{"kind":"team","id":"team-0105"}]}`},
		{"AssignRole", ` { "command_id" : "e5c2712e-82c9-510b-8f8f-fc554828299c", "actor":"admin","principal":"p-0000000","role":"staff","dry_run":true } `},
		{"SetAccessLevel", `{"command_id":"35265a91-4913-5636-bf5b-a7c0ce07448c","actor":null,"principal":"p-0000000","level":"limited","dry_run":false}`},
	} {
		if !agreeBody(t, tc.name, []byte(tc.body)) {
			t.Errorf("%s: fastBody gave up on %s", tc.name, tc.body)
		}
	}
}

// TestDecodeBodyRefusesAsStrict: the shapes fastBody leaves to DecodeStrict get DecodeStrict's
// answer (its refusal and message, or its command).
func TestDecodeBodyRefusesAsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		fastOK     bool
	}{
		{"AssignRole", `{"principal":"p","role":"r"}`, true},
		{"AssignRole", `{"principal":"p","principal":"q"}`, false},
		{"AssignRole", `{"Principal":"p"}`, false},
		{"AssignRole", `{"principal":"p","x":1}`, false},
		{"AssignRole", `{"principal":"\u0070"}`, false},
		{"AssignRole", "{\"principal\":\"\xff\"}", false},
		{"AssignRole", `{"principal":1}`, false},
		{"AssignRole", `{"principal":"p"} x`, false},
		{"AssignRole", `{"principal":"p"}{}`, false},
		{"AssignRole", `{"principal":"p",}`, false},
		{"AssignRole", `{"dry_run":"true"}`, false},
		{"AssignRole", `{"dry_run":null}`, true},
		{"AssignRole", `{"tenant":"t"}`, false},
		{"AssignRole", `{"via":"v"}`, false},
		{"AssignRole", `["principal"]`, false},
		{"AssignRole", `null`, false},
		{"AssignRole", ``, false},
		{"SetAccessLevel", `{"level":"full","level":null}`, false},
		{"RegisterPrincipal", `{"units":[null]}`, false},
		{"RegisterPrincipal", `{"units":[{"kind":"a","id":"b"},{}]}`, true},
		{"RegisterPrincipal", `{"units":[{"kind":"a","kind":"b"}]}`, false},
		{"RegisterPrincipal", `{"units":{}}`, false},
		{"RegisterRecord", `{"units":[],"assignees":[],"links":[]}`, true},
		{"RegisterRecord", `{"links":[{"type":"case","id":"c","x":"y"}]}`, false},
		{"RegisterRecord", `{"assignees":[{"principal":"p","relation":"r"}],"owner":"o","client":"c"}`, true},
		{"RegisterRecord", `{"type":"a","type":"b"}`, false},
		{"RegisterRecord", `{"command_id":"c","command_id":"c"}`, false},
		{"RegisterRecord", `{"type":"a"`, false},
	} {
		if ok := agreeBody(t, tc.name, []byte(tc.body)); ok != tc.fastOK {
			t.Errorf("%s %s: fastBody ok = %v; want %v", tc.name, tc.body, ok, tc.fastOK)
		}
	}
}

// FuzzDecodeBody: on any body of any command, DecodeBody answers exactly what DecodeStrict
// answers, and fastBody accepts only what DecodeStrict decodes to the same command.
func FuzzDecodeBody(f *testing.F) {
	for i, name := range fastKinds {
		f.Add(uint8(i), filled(f, name, 1+i%2))
		f.Add(uint8(i), filled(f, name, -1))
	}
	f.Add(uint8(4), []byte(`{"unit":{"kind":"team","id":"t"}}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		names := append(fastKinds[:len(fastKinds):len(fastKinds)], "DefineUnit", "UpdateRecord")
		agreeBody(t, names[int(kind)%len(names)], body)
	})
}

// BenchmarkDecodeBody: RegisterRecord bodies of the compare shape, each with its own command id
// and record id (as in an import: DecodeStrict's cache of short strings helps less than with
// one body again and again), read by DecodeBody and by DecodeStrict.
func BenchmarkDecodeBody(b *testing.B) {
	bodies := make([][]byte, 4096)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"command_id":"eca4880d-71e8-5af6-8d6e-%012d","actor":"admin","type":"invoice","id":"inv-%07d","units":[{"kind":"location","id":"loc-%03d"}],"assignees":[{"principal":"p-%07d","relation":"salesperson"}],"links":[{"type":"case","id":"case-%07d"}]}`, i, i, i%300, i*7, i/2)
	}
	b.Run("DecodeBody", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := DecodeBody("body", "RegisterRecord", bodies[i%len(bodies)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("DecodeStrict", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := DecodeStrict("body", bodies[i%len(bodies)], NewCommand("RegisterRecord")); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
