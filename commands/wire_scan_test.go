package commands

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/acl-es/acl/aggregates"
)

// scanCases are answers as the service writes them and others a client may get.
func scanCases() [][]byte {
	ids := []string{"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11"}
	cases := [][]byte{
		encodeResult(Result{}), encodeResult(Result{Seq: 42, Events: ids[:1]}), encodeResult(Result{Seq: 1<<64 - 1, Events: ids}),
		encodeResult(Result{Seq: 3, Events: []string{`a"b`, "<&>", "é"}}),
		encodeError(&aggregates.Error{Code: aggregates.CodeConflict, Message: "no"}),
		encodeResult(Result{DryRun: true, Seq: 9}),
	}
	for _, s := range []string{
		`{"ok":true,"seq":1,"events":[]}`, `{"ok":true,"seq":01,"events":[]}`, `{"ok":true,"seq":-1,"events":[]}`,
		`{"ok":true,"seq":18446744073709551616,"events":[]}`, `{"ok":true,"seq":1.5,"events":[]}`,
		`{"ok":true,"seq":1,"events":["a","b"]}`, `{"ok":true,"seq":1,"events":["a",]}`, `{"ok":true,"seq":1,"events":["a""b"]}`,
		`{"ok":true,"seq":1,"events":["a\u0041"]}`, `{"ok":true,"seq":1,"events":["a` + "\x01" + `"]}`,
		`{"ok":true,"seq":1,"events":["a` + "\xff" + `"]}`, `{"ok":true,"seq":1,"events":["a"]} `, `{"ok":true,"seq":1,"events":["a"]}x`,
		`{"ok":true,"seq":1,"events":["a"`, `{"ok":true,"seq":,"events":[]}`, `{"ok":true,"seq":1}`, `{"ok":true}`,
		`{"seq":1,"ok":true,"events":[]}`, `{"ok":true,"seq":1,"events":null}`, `{"ok":false,"seq":1,"events":[]}`, ``, `{`,
	} {
		cases = append(cases, []byte(s))
	}
	return cases
}

// sameOutcome reports whether two decodings of one answer agree.
func sameOutcome(a Result, aerr error, b Result, berr error) bool {
	if (aerr != nil) != (berr != nil) {
		return false
	}
	if aerr != nil {
		var ae, be *aggregates.Error
		return errors.As(aerr, &ae) == errors.As(berr, &be) && (ae == nil || (ae.Code == be.Code && ae.Message == be.Message))
	}
	return reflect.DeepEqual(a, b)
}

// TestScanAnswersAsJSON: the scanner of the usual answers gives what encoding/json gives, for
// answers the service writes and for others (which it leaves to encoding/json), alone and in a
// batch's answer.
func TestScanAnswersAsJSON(t *testing.T) {
	cases := scanCases()
	scanned := 0
	for _, c := range cases {
		got, gerr := decodeAnswer("Op", c)
		want, werr := decodeAnswerJSON("Op", c)
		if !sameOutcome(got, gerr, want, werr) {
			t.Fatalf("%s: decodeAnswer %+v, %v; encoding/json %+v, %v", c, got, gerr, want, werr)
		}
		if _, n, ok := scanOK(c, 0); ok && n == len(c) {
			scanned++
		}
	}
	if scanned < 4 {
		t.Fatalf("the scanner read %d of the answers the service writes", scanned)
	}
	for i := range cases {
		for j := range cases {
			for _, data := range [][]byte{
				fmt.Appendf(nil, `{"ok":true,"results":[%s,%s]}`, cases[i], cases[j]),
				fmt.Appendf(nil, `{"ok":true,"results":[%s]}`, cases[i]),
			} {
				cmds := []BatchCommand{{Command: "A"}, {Command: "B"}}
				got, gerr := decodeBatch(data, cmds)
				want, werr := decodeBatchJSON(data, cmds)
				if (gerr != nil) != (werr != nil) || len(got) != len(want) {
					t.Fatalf("%s: decodeBatch %+v, %v; encoding/json %+v, %v", data, got, gerr, want, werr)
				}
				for k := range got {
					if !sameOutcome(got[k].Result, got[k].Err, want[k].Result, want[k].Err) {
						t.Fatalf("%s: result %d %+v; encoding/json %+v", data, k, got[k], want[k])
					}
				}
			}
		}
	}
	for _, data := range []string{`{"ok":true}`, `{"ok":true,"results":[]}`, `{"ok":false,"error":{"code":"invalid_argument","message":"m"}}`} {
		got, gerr := decodeBatch([]byte(data), nil)
		want, werr := decodeBatchJSON([]byte(data), nil)
		if (gerr != nil) != (werr != nil) || len(got) != len(want) {
			t.Fatalf("%s: decodeBatch %+v, %v; encoding/json %+v, %v", data, got, gerr, want, werr)
		}
	}
	ok := encodeResult(Result{Seq: 42, Events: []string{"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10"}})
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeAnswer("Op", ok) }); n > 2 {
		t.Fatalf("decodeAnswer: %.0f allocations; want at most 2", n)
	}
}

// FuzzScanAnswer: whatever a client gets, the scanner agrees with encoding/json on what it reads.
func FuzzScanAnswer(f *testing.F) {
	for _, c := range scanCases() {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeAnswer("Op", data)
		want, werr := decodeAnswerJSON("Op", data)
		if !sameOutcome(got, gerr, want, werr) {
			t.Fatalf("%q: decodeAnswer %+v, %v; encoding/json %+v, %v", data, got, gerr, want, werr)
		}
	})
}
