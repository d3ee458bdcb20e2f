package replay

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/acl-es/acl/events"
)

// TestEncodeValueEqualsJSON: the fast encoders write exactly json.Marshal's bytes, for values
// with and without empty fields, nil and empty slices, and strings that need escaping.
func TestEncodeValueEqualsJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "bob", "case/r1", "role:staff, link:case/r2", "a<b", "x&y", `q"uote`, "back\\slash",
		"tab\there", "é", "\u2028", "\xff", "~", " "}
	str := func() string { return strs[rnd.IntN(len(strs))] }
	for i := range 5000 {
		var e logEntry
		if i%7 != 0 {
			e = logEntry{}
			for range rnd.IntN(4) {
				e = append(e, entryItem{I: rnd.IntN(20), Why: str()})
			}
		}
		r := randomRecordState(rnd, i, str)
		for _, v := range []any{e, r, &principalState{Kind: str(), Roles: []string{str()}}} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeValue(make([]byte, 0, 8), v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeValue(%#v)\n got %s\nwant %s", v, got, want)
			}
		}
	}
}

// TestDecodeStateEqualsJSON: decodeState gives encoding/json's value for the states the index
// writes (strings that need escapes included: its scanner gives those up), and for every
// one-byte change of them: the same value where encoding/json takes the bytes, an error where
// it does not.
func TestDecodeStateEqualsJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	strs := []string{"", "bob", "case-00000001", "a<b", `q"uote`, "back\\slash", "tab\there", "é", "\xff", "~", " "}
	str := func() string { return strs[rnd.IntN(len(strs))] }
	check := func(raw []byte, fresh func() any) {
		t.Helper()
		want, got := fresh(), fresh()
		wantErr, gotErr := json.Unmarshal(raw, want), decodeState(raw, got)
		if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && !reflect.DeepEqual(want, got)) {
			t.Fatalf("%s:\n json %#v (%v)\n fast %#v (%v)", raw, want, wantErr, got, gotErr)
		}
	}
	for i := range 5000 {
		r := randomRecordState(rnd, i, str)
		if rnd.IntN(2) == 0 {
			r.Client, r.Owner = "", "" // fields left out
		}
		p := &principalState{Kind: str(), First: rnd.Uint64N(1 << 40), Removed: rnd.Uint64N(2) * 1e9}
		if i%4 != 0 {
			p.Roles = []string{}
			for range rnd.IntN(3) {
				p.Roles = append(p.Roles, str())
			}
		}
		for _, c := range []struct {
			v     any
			fresh func() any
		}{{r, func() any { return new(recordState) }}, {p, func() any { return new(principalState) }}} {
			raw, err := encodeValue(nil, c.v)
			if err != nil {
				t.Fatal(err)
			}
			raw = bytes.Clone(raw)
			check(raw, c.fresh)
			for range 3 {
				m := bytes.Clone(raw)
				switch j := rnd.IntN(len(m)); rnd.IntN(3) {
				case 0:
					m[j] = "{}[],:\"0123456789-nultrefa x\\"[rnd.IntN(29)]
				case 1:
					m = append(m[:j], m[j+1:]...)
				default:
					m = append(m[:j], append([]byte{"\"0,}]"[rnd.IntN(5)]}, m[j:]...)...)
				}
				check(m, c.fresh)
			}
		}
	}
}

// TestDecodeStateFast: the states of the compare shape take the scanner, not encoding/json.
func TestDecodeStateFast(t *testing.T) {
	for _, v := range []any{
		&recordState{Exists: true, Client: "client-00632", Assignees: []events.Assignee{{Principal: "p-0009948", Relation: "assignee"}},
			Links: []events.RecordRef{{Type: "case", ID: "case-00000002"}}, LinkedBy: 2, First: 12, Removed: 99},
		&recordState{Assignees: []events.Assignee{}, Links: nil},
		&principalState{Kind: "staff", Roles: []string{"staff", "x"}, First: 7},
		&principalState{Kind: "staff", Removed: 3},
	} {
		raw, err := encodeValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		switch x := v.(type) {
		case *recordState:
			got := new(recordState)
			ok = fastRecordState(string(raw), got) && reflect.DeepEqual(got, x)
		case *principalState:
			got := new(principalState)
			ok = fastPrincipalState(string(raw), got) && reflect.DeepEqual(got, x)
		}
		if !ok {
			t.Errorf("%s: not decoded by the scanner", raw)
		}
	}
}

// randomRecordState is a record state of strings from str; every fifth has nil assignees,
// every third nil links, the others up to two of each.
func randomRecordState(rnd *rand.Rand, i int, str func() string) *recordState {
	r := &recordState{Exists: rnd.IntN(2) == 0, Client: str(), Owner: str(), LinkedBy: rnd.IntN(3) - 1,
		First: rnd.Uint64N(1 << 40), Removed: rnd.Uint64N(3) * 1e12}
	if i%5 != 0 {
		r.Assignees = []events.Assignee{}
		for range rnd.IntN(3) {
			r.Assignees = append(r.Assignees, events.Assignee{Principal: str(), Relation: str()})
		}
	}
	if i%3 != 0 {
		r.Links = []events.RecordRef{}
		for range rnd.IntN(3) {
			r.Links = append(r.Links, events.RecordRef{Type: str(), ID: str()})
		}
	}
	return r
}
