package replay

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
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
