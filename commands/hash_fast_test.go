package commands

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// canonKinds are the commands appendCanonical writes.
var canonKinds = []string{"RegisterRecord", "RegisterPrincipal", "AssignRole", "SetAccessLevel"}

// canonCommand is a command of kind name whose every string is s (with its index appended when
// s is not empty), with lists of n elements (n < 0: nil) and dry_run as given.
func canonCommand(name, s string, n int, dry bool) aggregates.Command {
	k := 0
	str := func() string {
		k++
		if s == "" {
			return ""
		}
		return fmt.Sprintf("%s%d", s, k)
	}
	units := func() []events.UnitRef {
		if n < 0 {
			return nil
		}
		us := make([]events.UnitRef, n)
		for i := range us {
			us[i] = events.UnitRef{Kind: str(), ID: str()}
		}
		return us
	}
	base := aggregates.CommandBase{CommandID: str(), Actor: str(), DryRun: dry, Tenant: "t", Via: "v"}
	switch name {
	case "RegisterRecord":
		c := &aggregates.RegisterRecord{CommandBase: base}
		c.Type, c.ID, c.Client, c.Owner, c.Units = str(), str(), str(), str(), units()
		if n >= 0 {
			c.Assignees = make([]events.Assignee, n)
			c.Links = make([]events.RecordRef, n)
			for i := range n {
				c.Assignees[i] = events.Assignee{Principal: str(), Relation: str()}
				c.Links[i] = events.RecordRef{Type: str(), ID: str()}
			}
		}
		return c
	case "RegisterPrincipal":
		return &aggregates.RegisterPrincipal{CommandBase: base, Principal: str(), Kind: str(), Email: str(), Client: str(), Units: units()}
	case "AssignRole":
		return &aggregates.AssignRole{CommandBase: base, Principal: str(), Role: str()}
	default:
		return &aggregates.SetAccessLevel{CommandBase: base, Principal: str(), Level: str()}
	}
}

// agreeCanonical checks that appendCanonical, where it accepts cmd, writes json.Marshal's bytes,
// and reports whether it accepted.
func agreeCanonical(t *testing.T, cmd aggregates.Command) bool {
	t.Helper()
	want, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendCanonical([]byte("prefix"), cmd)
	if ok && string(got) != "prefix"+string(want) {
		t.Fatalf("%s: appendCanonical wrote\n%s\njson.Marshal\n%s", cmd.Name(), got[len("prefix"):], want)
	}
	return ok
}

// TestCanonicalAgrees: every kind appendCanonical writes, with strings set, empty and in need of
// escapes, lists with elements, empty and nil, with and without dry_run: where it accepts it
// writes json.Marshal's bytes; it accepts every command of plain strings (fails without it:
// nothing accepted) and gives up on each string encoding/json escapes.
func TestCanonicalAgrees(t *testing.T) {
	for _, name := range canonKinds {
		for _, n := range []int{2, 1, 0, -1} {
			for _, dry := range []bool{false, true} {
				for _, s := range []string{"p-0000001", "", "a b.c@d_e-F:1/2"} {
					if !agreeCanonical(t, canonCommand(name, s, n, dry)) {
						t.Errorf("%s %q n=%d dry_run=%v: appendCanonical gave up", name, s, n, dry)
					}
				}
				for _, s := range []string{`"`, `\`, "<", ">", "&", "\n", "\x00", "\x7f", "é", "\xff", "\u2028"} {
					if agreeCanonical(t, canonCommand(name, s, n, dry)) {
						t.Errorf("%s %q n=%d: appendCanonical accepted a string encoding/json escapes", name, s, n)
					}
				}
			}
		}
	}
	if agreeCanonical(t, &aggregates.DefineUnit{}) {
		t.Error("appendCanonical accepted a kind it does not write")
	}
}

// FuzzCanonical: for any strings, lists and dry_run, appendCanonical either gives up or
// writes what json.Marshal writes.
func FuzzCanonical(f *testing.F) {
	f.Add(uint8(0), "p-1", int8(1), false)
	f.Add(uint8(1), "a<b", int8(-1), true)
	f.Add(uint8(2), "é", int8(0), false)
	f.Fuzz(func(t *testing.T, kind uint8, s string, n int8, dry bool) {
		agreeCanonical(t, canonCommand(canonKinds[int(kind)%len(canonKinds)], s, int(n%4), dry))
	})
}

// BenchmarkHash: a RegisterRecord of the compare shape.
func BenchmarkHash(b *testing.B) {
	cmd := canonCommand("RegisterRecord", "inv-0000001", 1, false)
	b.ReportAllocs()
	for b.Loop() {
		_ = Hash(cmd)
	}
}

// TestCanonicalWritesEveryField: each kind appendCanonical writes, with every exported field
// (of the command and, recursively, of what it holds) set to a value other than its zero, is
// accepted and written as json.Marshal writes it. A field added to one of these commands later
// (an omitempty one above all, which the field-by-field commands of TestCanonicalAgrees leave
// out) fails here instead of being left out of the digest, which would answer a command sent
// again with another value of it as a retry rather than a conflict.
func TestCanonicalWritesEveryField(t *testing.T) {
	for _, cmd := range []aggregates.Command{&aggregates.RegisterRecord{}, &aggregates.RegisterPrincipal{},
		&aggregates.AssignRole{}, &aggregates.SetAccessLevel{}} {
		n := 0
		fillEvery(reflect.ValueOf(cmd).Elem(), &n)
		if !agreeCanonical(t, cmd) {
			t.Errorf("%s with every field set: appendCanonical gave up", cmd.Name())
		}
	}
}

// fillEvery sets every settable field under v to a value other than its zero: strings of plain
// letters and digits, numbers, true, slices and maps of one element, pointers to a filled value.
func fillEvery(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n))
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillEvery(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillEvery(v.Index(0), n)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillEvery(v.Elem(), n)
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillEvery(k, n)
		fillEvery(e, n)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	}
}
