package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestFastEnvelopesTakesWhatAppendWrites: the fast scanner accepts the JSON of envelopes with
// every field set, as Append writes them, and agrees with encoding/json. A field added to
// Envelope fails here until the scanner knows its key.
func TestFastEnvelopesTakesWhatAppendWrites(t *testing.T) {
	if n := reflect.TypeFor[Envelope]().NumField(); n != 13 {
		t.Fatalf("Envelope has %d fields, the scanner knows 13: teach fastdecode.go the new key", n)
	}
	full := Envelope{ID: "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", Type: RecordAssigned, Schema: 2, Tenant: "acme",
		Aggregate: AggregateRef{Kind: KindRecord, Type: "invoice", ID: "inv-1"}, Actor: "alice", Via: "billing",
		CommandID: "c1", Cause: "because: \"quoted\" <tag> é", Time: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Data: json.RawMessage(`{"principal":"bob","relation":"assignee","x":[1,-2.5e3,true,null,"\u00e9\n"]}`), Seq: 42,
		CommandHash: "h"}
	minimal := full
	minimal.Aggregate.Type, minimal.Cause, minimal.Seq, minimal.CommandHash, minimal.Via = "", "", 0, "", ""
	tests := []struct {
		name   string
		envs   []Envelope
		fastOK bool
	}{
		{"minimal", []Envelope{minimal}, true},
		{"several", []Envelope{minimal, minimal, minimal}, true},
		{"empty", []Envelope{}, true},
		// json.Marshal escapes < > & and quotes in strings: the scanner leaves those to
		// encoding/json.
		{"escaped cause", []Envelope{full}, false},
	}
	for _, tc := range tests {
		data, err := json.Marshal(tc.envs)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := fastEnvelopes(data)
		if ok != tc.fastOK {
			t.Fatalf("%s: fast scanner ok = %v; want %v for %s", tc.name, ok, tc.fastOK, data)
		}
		var std []Envelope
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatal(err)
		}
		if ok && !reflect.DeepEqual(fast, std) {
			t.Fatalf("%s: fast %#v; encoding/json %#v", tc.name, fast, std)
		}
		got, err := decodeEnvelopes(data)
		if err != nil || !reflect.DeepEqual(got, std) {
			t.Fatalf("%s: decodeEnvelopes = %#v, %v; want %#v", tc.name, got, err, std)
		}
	}
	withSeq := full
	withSeq.Cause = "plain"
	data, _ := json.Marshal([]Envelope{withSeq})
	if _, ok := fastEnvelopes(data); !ok {
		t.Fatalf("fast scanner refused every field set: %s", data)
	}
}

// TestFastEnvelopesGivesUp: shapes the scanner leaves to encoding/json.
func TestFastEnvelopesGivesUp(t *testing.T) {
	for _, in := range []string{
		`null`, `{}`, `[null]`, `[{"ID":"x"}]`, `[{"id":"x","extra":1}]`, `[{"id":null}]`,
		`[{"schema":1.0}]`, `[{"schema":-1}]`, `[{"schema":01}]`, `[{"seq":99999999999999999999}]`,
		`[{"data":null}]`, `[{"data":[1]}]`, `[{"data":{"a":01}}]`, `[{"data":{"a":"\x"}}]`,
		`[{"id":"a\u0062"}]`, "[{\"id\":\"\xff\"}]", `[{"time":"yesterday"}]`, `[{}] x`, `[{},]`,
	} {
		if envs, ok := fastEnvelopes([]byte(in)); ok {
			t.Errorf("fast scanner accepted %s as %#v", in, envs)
		}
	}
}
