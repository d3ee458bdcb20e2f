package commands

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// filled returns a principal or record with every field set (found by reflection, so that a
// field added to the state and not to the flat form fails TestSpillFlatCoversFields), and one
// with its lists empty rather than nil.
func filled(t *testing.T, st any) any {
	t.Helper()
	v := reflect.ValueOf(st).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if c, ok := f.Addr().Interface().(*aggregates.Commands); ok {
			for k := range 3 { // ids of another form than UUIDs (kept as strings) and UUIDs
				c.Set(name+string(rune('a'+k)), aggregates.CommandResult{Seq: uint64(k + 1), Hash: name + "-h",
					Events: []string{"ev-" + name + string(rune('a'+k)), "ev2"}})
				c.Set(fmt.Sprintf("0193f0c2-7a1e-7cc4-9b1a-%012x", k), aggregates.CommandResult{Seq: uint64(k + 10),
					Hash: fmt.Sprintf("%064x", k), Events: []string{fmt.Sprintf("0193f0c2-7a1e-7cc4-9b1a-%012x", 100+k)}})
			}
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("s-" + name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint64:
			f.SetUint(42)
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 2, 2)
			for k := range 2 {
				fillStrings(s.Index(k), name+string(rune('a'+k)))
			}
			f.Set(s)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			for k := range 3 {
				key := reflect.ValueOf(name + string(rune('a'+k)))
				val := reflect.New(f.Type().Elem()).Elem()
				fillStrings(val, name+"-v")
				if val.Kind() == reflect.Struct { // a CommandResult
					val.FieldByName("Seq").SetUint(uint64(k + 1))
					val.FieldByName("Events").Set(reflect.ValueOf([]string{"ev-" + key.String(), "ev2"}))
				}
				m.SetMapIndex(key, val)
			}
			f.Set(m)
		default:
			t.Fatalf("%T.%s: a %s field; teach the flat form (spill_state.go) and this test about it", st, name, f.Kind())
		}
	}
	return st
}

func fillStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).Kind() == reflect.String {
				v.Field(i).SetString(s + "-" + v.Type().Field(i).Name)
			}
		}
	}
}

// TestSpillFlatCoversFields: every field of a principal and a record, lists nil, empty or
// not, reads back equal from the flat form (version 2); damaged data is an error.
func TestSpillFlatCoversFields(t *testing.T) {
	p := filled(t, &aggregates.Principal{}).(*aggregates.Principal)
	r := filled(t, &aggregates.Record{}).(*aggregates.Record)
	pe := filled(t, &aggregates.Principal{}).(*aggregates.Principal)
	pe.Units, pe.Roles, pe.Grants, pe.Denied = []events.UnitRef{}, []string{}, nil, nil
	re := filled(t, &aggregates.Record{}).(*aggregates.Record)
	re.Units, re.Assignees, re.Links, re.Removed = nil, []events.Assignee{}, nil, false
	for _, st := range []any{p, r, pe, re, aggregates.NewPrincipal("p0"), aggregates.NewRecord("case", "k0")} {
		checkRoundTrip(t, st)
	}
}

// checkRoundTrip: st is written as version 3 and reads back equal, with its sequence; every
// shorter prefix of it is an error.
func checkRoundTrip(t *testing.T, st any) {
	t.Helper()
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if b[len(spillMagic)] != spillVersionIDs {
		t.Fatalf("written as version %d", b[len(spillMagic)])
	}
	got, err := decodeState(slices.Clone(b))
	if err != nil {
		t.Fatalf("%T: %v", st, err)
	}
	if !sameState(got, st) {
		t.Errorf("read back\n %#v\nwrote\n %#v", got, st)
	}
	if seq, ok := spilledSeq(b); !ok || seq != stateSeq(st) {
		t.Errorf("spilledSeq = %d, %v; want %d", seq, ok, stateSeq(st))
	}
	for n := range len(b) {
		if _, err := decodeState(slices.Clone(b[:n])); err == nil {
			t.Fatalf("%T: the first %d of %d bytes read as a state", st, n, len(b))
		}
	}
}

// encodeStateV1 is how releases before the flat form spilled a state (version 1).
func encodeStateV1(t testing.TB, st any) []byte {
	t.Helper()
	var kind byte
	var cmds map[string]aggregates.CommandResult
	var seq uint64
	switch s := st.(type) {
	case *aggregates.Principal:
		kind, cmds, seq = 'p', maps.Collect(s.Commands.All()), s.Seq
	case *aggregates.Record:
		kind, cmds, seq = 'r', maps.Collect(s.Commands.All()), s.Seq
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(spillMagic), spillVersion, kind)
	b = binary.AppendUvarint(b, seq)
	b = appendStr(b, string(js))
	return appendCommands(b, cmds, nil)
}

// TestSpillReadsVersion1: a spill kept by an older release is still read, and each state reads
// the same from version 1 as from version 2.
func TestSpillReadsVersion1(t *testing.T) {
	for _, st := range []any{filled(t, &aggregates.Principal{}), filled(t, &aggregates.Record{}), aggregates.NewRecord("case", "k0")} {
		old, err := decodeState(encodeStateV1(t, st))
		if err != nil {
			t.Fatal(err)
		}
		b, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := decodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		if !sameState(old, flat) || !sameState(old, st) {
			t.Errorf("version 1 read\n %#v\nversion 2 read\n %#v\nwrote\n %#v", old, flat, st)
		}
		if seq, ok := spilledSeq(encodeStateV1(t, st)); !ok || seq != stateSeq(st) {
			t.Errorf("spilledSeq of version 1 = %d, %v", seq, ok)
		}
	}
}

// BenchmarkSpillState: writing and reading back a record as the compare shape's (units,
// assignees, a link, the commands it remembers), as written (flat, version 3), as version 2
// and as version 1.
func BenchmarkSpillState(b *testing.B) {
	r := aggregates.NewRecord("invoice", "invoice-123456")
	r.Exists, r.Seq, r.Owner = true, 123456, "staff-42"
	r.Units = []events.UnitRef{{Kind: aggregates.UnitTeam, ID: "team-7"}, {Kind: "location", ID: "loc-3"}}
	r.Links = []events.RecordRef{{Type: "case", ID: "case-99"}}
	for i := range 3 {
		p := "staff-" + string(rune('a'+i))
		r.Assignees = append(r.Assignees, events.Assignee{Principal: p, Relation: events.DefaultRelation})
		r.Prov["assignee:"+p+"|"+events.DefaultRelation] = "0193f0c2-7a1e-7cc4-9b1a-00000000000" + string(rune('a'+i))
		r.Commands.Set("0193f0c2-7a1e-7cc4-9b1a-10000000000"+string(rune('a'+i)), aggregates.CommandResult{Seq: uint64(i + 1),
			Hash: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", Events: []string{"0193f0c2-7a1e-7cc4-9b1a-20000000000" + string(rune('a'+i))}})
	}
	r.Prov["body"] = "0193f0c2-7a1e-7cc4-9b1a-000000000000"
	b.Run("encode/flat", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeState(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/v2", func(b *testing.B) {
		for b.Loop() {
			encodeStateV2(b, r)
		}
	})
	b.Run("encode/v1", func(b *testing.B) {
		for b.Loop() {
			encodeStateV1(b, r)
		}
	})
	for name, data := range map[string][]byte{"flat": must(encodeState(r)), "v2": encodeStateV2(b, r), "v1": encodeStateV1(b, r)} {
		b.Run("decode/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeState(slices.Clone(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// encodeStateV2 is how releases before version 3 spilled a state: the flat form, ids as they are.
func encodeStateV2(t testing.TB, st any) []byte {
	t.Helper()
	b := []byte(spillMagic)
	switch s := st.(type) {
	case *aggregates.Principal:
		b = binary.AppendUvarint(append(b, spillVersionFlat, 'p'), s.Seq)
		return appendCommands(appendPrincipal(b, s, nil), maps.Collect(s.Commands.All()), nil)
	case *aggregates.Record:
		b = binary.AppendUvarint(append(b, spillVersionFlat, 'r'), s.Seq)
		return appendCommands(appendRecord(b, s, nil), maps.Collect(s.Commands.All()), nil)
	}
	t.Fatalf("spill a %T", st)
	return nil
}

// compareRecord is a record as the compare shape's import and commands workload leave one: its
// body and an assignment from one command each, the event ids UUIDs, the hashes SHA-256 in hex.
func compareRecord() *aggregates.Record {
	r := aggregates.NewRecord("invoice", "invoice-r6b1552e7-c16-9990")
	r.Exists, r.Seq, r.Client = true, 283528, "client-00808"
	r.Units = []events.UnitRef{{Kind: "location", ID: "loc-016"}}
	r.Assignees = []events.Assignee{{Principal: "p-0002301", Relation: "salesperson"}}
	r.Links = []events.RecordRef{{Type: "case", ID: "case-00193003"}}
	r.Prov["body"] = "01a24b4c-008c-7e72-81cd-18e6046b7709"
	r.Prov["assignee:p-0002301|salesperson"] = "01a24b4c-008c-7e72-81cd-18e6046b7709"
	r.Commands.Set("0152a893-83ff-52b5-b3d0-2dc15a53b7c1", aggregates.CommandResult{Seq: 283528,
		Hash: "1db6c252af1104fa06d698c180124a156c4522ae6be413cc8633fbcd6fb89539", Events: []string{"01a24b4c-008c-7e72-81cd-18e6046b7709"}})
	return r
}

// TestSpillIDsShort: version 3 writes UUIDs and hex hashes as bytes and a repeated id as a
// number, and reads every id back as it was, also those that only look like a UUID or a hash
// (upper case, a letter beyond f, a dash moved, one digit short) and the ids of a state with
// more than maxSpillIDs of them; version 2 is still read.
func TestSpillIDsShort(t *testing.T) {
	r := compareRecord()
	v2, v3 := encodeStateV2(t, r), must(encodeState(r))
	if 3*len(v3) > 2*len(v2) {
		t.Errorf("the compare shape's record: %d bytes in version 3, %d in version 2; want at most two thirds", len(v3), len(v2))
	}
	p := aggregates.NewPrincipal("p-0000001")
	p.Exists, p.Seq = true, 300000
	odd := []string{
		"01A24B4C-008C-7E72-81CD-18E6046B7709", "01a24b4c-008c-7e72-81cd-18e6046b770g", "01a24b4c0-08c-7e72-81cd-18e6046b7709",
		"01a24b4c-008c-7e72-81cd-18e6046b770", "1DB6C252AF1104FA06D698C180124A156C4522AE6BE413CC8633FBCD6FB89539",
		"1db6c252af1104fa06d698c180124a156c4522ae6be413cc8633fbcd6fb8953", "", "e1", "01a24b4c-008c-7e72-81cd-18e6046b7709",
	}
	for i, id := range odd {
		p.Prov["odd"+string(rune('a'+i))] = id
	}
	for i := range 2 * maxSpillIDs {
		cid := fmt.Sprintf("0152a893-83ff-52b5-b3d0-%012x", i)
		ev := fmt.Sprintf("01a24b4c-008c-7e72-81cd-%012x", i%7)
		p.Commands.Set(cid, aggregates.CommandResult{Seq: uint64(i + 1), Hash: fmt.Sprintf("%064x", i%5), Events: []string{ev, odd[i%len(odd)]}})
		p.Prov[fmt.Sprintf("grant:%d", i)] = ev
	}
	for _, st := range []any{r, p} {
		checkRoundTrip(t, st)
		old, err := decodeState(encodeStateV2(t, st))
		if err != nil || !sameState(old, st) {
			t.Errorf("version 2 read back\n %#v (%v)\nwrote\n %#v", old, err, st)
		}
	}
}

// sameState reports whether two states are equal, their memories of commands compared by what
// they answer (their layout depends on the order commands were read in).
func sameState(a, b any) bool {
	plain := func(st any) (any, map[string]aggregates.CommandResult) {
		switch s := st.(type) {
		case *aggregates.Principal:
			c := *s
			c.Commands = aggregates.Commands{}
			return &c, maps.Collect(s.Commands.All())
		case *aggregates.Record:
			c := *s
			c.Commands = aggregates.Commands{}
			return &c, maps.Collect(s.Commands.All())
		}
		return st, nil
	}
	sa, ca := plain(a)
	sb, cb := plain(b)
	return reflect.DeepEqual(sa, sb) && reflect.DeepEqual(ca, cb)
}
