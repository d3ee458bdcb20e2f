package commands

import (
	"encoding/json"
	"math"
	"testing"
)

// TestEncodeResultAsMarshal: a command's answer is written byte for byte as json.Marshal writes
// it, for event ids Marshal writes as they are and for those it escapes (left to it), with one
// allocation for the usual answer (Marshal's reflection took two and most of the CPU).
func TestEncodeResultAsMarshal(t *testing.T) {
	ids := []string{"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11"}
	for _, r := range []Result{
		{},
		{Seq: 7, Events: []string{}},
		{Seq: 1, Events: ids[:1]},
		{Seq: math.MaxUint64, Events: ids},
		{Seq: 3, Events: []string{`a"b`}},
		{Seq: 3, Events: []string{`a\b`}},
		{Seq: 3, Events: []string{"<a&b>"}},
		{Seq: 3, Events: []string{"é"}},
		{Seq: 3, Events: []string{"a\nb", "\x7f"}},
		{Seq: 3, Events: []string{"a\u2028b"}},
		{Seq: 3, Events: []string{""}},
	} {
		events := r.Events
		if events == nil {
			events = []string{}
		}
		want, err := json.Marshal(okAnswer{OK: true, Seq: r.Seq, Events: events})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeResult(r); string(got) != string(want) {
			t.Fatalf("encodeResult(%+v) = %s; json.Marshal gives %s", r, got, want)
		}
	}
	r := Result{Seq: 123456, Events: ids[:1]}
	if n := testing.AllocsPerRun(100, func() { encodeResult(r) }); n > 1 {
		t.Fatalf("encodeResult: %.0f allocations; want 1", n)
	}
}
