package events

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// encodeCase is an envelope with the fields whose content decides how encodeEnvelopes writes
// it.
func encodeCase(id, actor, via, cause, hash string, at time.Time, data string, seq uint64) Envelope {
	return Envelope{ID: id, Type: RoleAssigned, Schema: 1, Tenant: "acme",
		Aggregate: AggregateRef{Kind: KindPrincipal, ID: "bob"}, Actor: actor, Via: via,
		CommandID: "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", Cause: cause, Time: at,
		Data: json.RawMessage(data), Seq: seq, CommandHash: hash}
}

// TestEncodeEnvelopes: the envelopes of a message are written byte for byte as json.Marshal
// writes them, for the usual envelopes and for those holding what Marshal escapes or rewrites
// (left to it), and refused where Marshal refuses.
func TestEncodeEnvelopes(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	plain := encodeCase("0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11", "ann", "acld", "AssignRole", "ab12", at, `{"role":"r"}`, 0)
	record := Envelope{ID: "e2", Type: RecordRegistered, Schema: 1, Tenant: "acme",
		Aggregate: AggregateRef{Kind: KindRecord, Type: "case", ID: "c1"}, Actor: "system", CommandID: "c",
		Time: at.Truncate(time.Second), Data: json.RawMessage(`{"type":"case","id":"c1","assignees":[{"principal":"bob","relation":"assignee"}],"links":[]}`)}
	tests := []struct {
		name string
		envs []Envelope
	}{
		{"nil", nil},
		{"none", []Envelope{}},
		{"one", []Envelope{plain}},
		{"two, a record's with its type and no via, cause or hash", []Envelope{plain, record}},
		{"seq written when set", []Envelope{encodeCase("i", "ann", "", "", "", at, `{}`, 42)}},
		{"quote in a string", []Envelope{encodeCase(`i"d`, "ann", "", "", "", at, `{}`, 0)}},
		{"backslash", []Envelope{encodeCase(`i\d`, "ann", "", "", "", at, `{}`, 0)}},
		{"html characters", []Envelope{encodeCase("i", "a<n>n&", "v<", "c>", "h&", at, `{}`, 0)}},
		{"control character", []Envelope{encodeCase("i", "a\nn", "", "", "", at, `{}`, 0)}},
		{"non-ASCII", []Envelope{encodeCase("i", "ann", "vïa", "", "", at, `{}`, 0)}},
		{"invalid UTF-8", []Envelope{encodeCase("i", "a\xffn", "", "", "", at, `{}`, 0)}},
		{"line separator", []Envelope{encodeCase("i", "a\u2028n", "", "", "", at, `{}`, 0)}},
		{"data with spaces between tokens", []Envelope{encodeCase("i", "ann", "", "", "", at, `{ "role" : "r" }`, 0)}},
		{"data with a newline", []Envelope{encodeCase("i", "ann", "", "", "", at, "{\"role\":\n\"r\"}", 0)}},
		{"data with spaces inside strings", []Envelope{encodeCase("i", "ann", "", "", "", at, `{"name":"a b\tc"}`, 0)}},
		{"data with html characters in strings", []Envelope{encodeCase("i", "ann", "", "", "", at, `{"name":"<b>&"}`, 0)}},
		{"data with escapes", []Envelope{encodeCase("i", "ann", "", "", "", at, `{"name":"a\"b\\c\u003c\u2028"}`, 0)}},
		{"data with a line separator", []Envelope{encodeCase("i", "ann", "", "", "", at, "{\"name\":\"a\u2028b\u2029\"}", 0)}},
		{"data with non-ASCII", []Envelope{encodeCase("i", "ann", "", "", "", at, `{"name":"Zoë 東京"}`, 0)}},
		{"data not JSON", []Envelope{encodeCase("i", "ann", "", "", "", at, `{"name":`, 0)}},
		{"data with trailing bytes", []Envelope{encodeCase("i", "ann", "", "", "", at, `{}x`, 0)}},
		{"no data", []Envelope{encodeCase("i", "ann", "", "", "", at, "", 0)}},
		{"data null", []Envelope{encodeCase("i", "ann", "", "", "", at, `null`, 0)}},
		{"time not in UTC", []Envelope{encodeCase("i", "ann", "", "", "", at.In(time.FixedZone("x", 3600)), `{}`, 0)}},
		{"time in a zone at offset 0", []Envelope{encodeCase("i", "ann", "", "", "", at.In(time.FixedZone("x", 0)), `{}`, 0)}},
		{"zero time", []Envelope{encodeCase("i", "ann", "", "", "", time.Time{}, `{}`, 0)}},
		{"year 10000", []Envelope{encodeCase("i", "ann", "", "", "", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `{}`, 0)}},
		{"year -1", []Envelope{encodeCase("i", "ann", "", "", "", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), `{}`, 0)}},
		{"negative schema", []Envelope{{ID: "i", Schema: -3, Time: at, Data: json.RawMessage(`1`)}}},
		{"empty fields", []Envelope{{Time: at, Data: json.RawMessage(`[]`)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := json.Marshal(tc.envs)
			got, gerr := encodeEnvelopes(tc.envs)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("error %v; json.Marshal's %v", gerr, werr)
			}
			if string(got) != string(want) {
				t.Fatalf("encodeEnvelopes:\n got %s\nwant %s", got, want)
			}
			if !allValid(tc.envs) {
				return
			}
			// An append's validation decoded the data, so it is not checked again.
			got, gerr = encodeChecked(tc.envs, true)
			if (werr != nil) != (gerr != nil) || string(got) != string(want) {
				t.Fatalf("encodeChecked of valid data:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
			}
		})
	}
}

// allValid reports whether each envelope's data is valid JSON.
func allValid(envs []Envelope) bool {
	for _, e := range envs {
		if !json.Valid(e.Data) {
			return false
		}
	}
	return true
}

// FuzzEncodeEnvelopes: whatever the strings and data of an envelope, encodeEnvelopes writes
// what json.Marshal writes, and fails where it fails.
func FuzzEncodeEnvelopes(f *testing.F) {
	f.Add("0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11", "ann", "acld", "case", `{"role":"r"}`, int64(1740830400123456789), 0, uint64(0))
	f.Add(`a"<`, "a\u2028", "", "", `{"a": "b<"}`, int64(0), 3600, uint64(9))
	f.Fuzz(func(t *testing.T, id, actor, via, typ, data string, nanos int64, offset int, seq uint64) {
		at := time.Unix(0, nanos).In(time.FixedZone("z", offset%100000))
		e := encodeCase(id, actor, via, typ, id, at, data, seq)
		e.Aggregate.Type = typ
		envs := []Envelope{e, e}
		want, werr := json.Marshal(envs)
		got, gerr := encodeEnvelopes(envs)
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Fatalf("encodeEnvelopes %q (%v); json.Marshal %q (%v)", got, gerr, want, werr)
		}
		if allValid(envs) {
			got, gerr = encodeChecked(envs, true)
			if (werr != nil) != (gerr != nil) || string(got) != string(want) {
				t.Fatalf("encodeChecked %q (%v); json.Marshal %q (%v)", got, gerr, want, werr)
			}
		}
	})
}

// BenchmarkEncodeEnvelopes compares the message data of a record's registration written by
// encodeEnvelopes and by json.Marshal.
func BenchmarkEncodeEnvelopes(b *testing.B) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	envs := []Envelope{{ID: "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11", Type: RecordRegistered, Schema: 1, Tenant: "bench-compare-0",
		Aggregate: AggregateRef{Kind: KindRecord, Type: "invoice", ID: "inv-000123"}, Actor: "admin", Via: "acld",
		CommandID: "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", Cause: "RegisterRecord", Time: at,
		Data:        json.RawMessage(`{"type":"invoice","id":"inv-000123","client":"cl-7","owner":"","assignees":[{"principal":"p-00042","relation":"salesperson"}],"links":[{"type":"case","id":"case-000077"}]}`),
		CommandHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}
	for _, enc := range []struct {
		name string
		fn   func([]Envelope) ([]byte, error)
	}{{"encodeEnvelopes", encodeEnvelopes}, {"json.Marshal", func(e []Envelope) ([]byte, error) { return json.Marshal(e) }}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.fn(envs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMessageRawRoundTrip: a message decoded from the stream and encoded again by Raw gives the
// stored data byte for byte (what replay's event log keeps), and decoding that gives the message
// back.
func TestMessageRawRoundTrip(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := map[string][]Envelope{
		"plain":                  {encodeCase("0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11", "ann", "acld", "AssignRole", "ab12", at, `{"role":"r"}`, 0)},
		"two":                    {encodeCase("a", "ann", "", "", "", at, `{}`, 0), encodeCase("b", "bob", "", "c", "", at, `[1,2]`, 0)},
		"html characters":        {encodeCase("i", "a<n>n&", "v<", "c>", "h&", at, `{}`, 0)},
		"non-ASCII":              {encodeCase("i", "ann", "vïa", "", "", at, `{"name":"Zoë 東京"}`, 0)},
		"data with spaces":       {encodeCase("i", "ann", "", "", "", at, `{ "role" : "r" }`, 0)},
		"time not in UTC":        {encodeCase("i", "ann", "", "", "", at.In(time.FixedZone("x", 3600)), `{}`, 0)},
		"data with a line break": {encodeCase("i", "ann", "", "", "", at, "{\"role\":\n\"r\"}", 0)},
	}
	for name, envs := range tests {
		t.Run(name, func(t *testing.T) {
			stored, err := encodeEnvelopes(envs) // as Append writes it
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeMessage("acl.events.acme.principal.ann", 7, at, stored)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := m.Raw()
			if err != nil {
				t.Fatal(err)
			}
			if string(raw.Data) != string(stored) {
				t.Fatalf("Raw:\n got %s\nwant %s", raw.Data, stored)
			}
			back, err := raw.Decode()
			if err != nil || !reflect.DeepEqual(back, m) {
				t.Fatalf("decoded again: %+v (%v)\nwant %+v", back, err, m)
			}
		})
	}
}

// TestNewMessageHeaders: an append's message carries its expected sequence and message id as
// Header.Set would write them, each value a slice of its own (an Add to one leaves the other),
// and its two values cost one allocation (two before).
func TestNewMessageHeaders(t *testing.T) {
	e, err := New(Meta{Tenant: "acme", Aggregate: PrincipalRef("bob"), Actor: "system", CommandID: "c1", Time: time.Now()},
		RoleAssignedV1{Role: "technician"})
	if err != nil {
		t.Fatal(err)
	}
	envs := []Envelope{e}
	for _, tc := range []struct {
		expected uint64
		id       string
	}{{0, "c1"}, {7, ""}, {1<<64 - 1, "c/1"}} {
		m, _, err := newMessage("acl.events.acme.principal.bob", tc.expected, tc.id, envs, false)
		if err != nil {
			t.Fatal(err)
		}
		want := nats.Header{}
		want.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(tc.expected, 10))
		if tc.id != "" {
			want.Set(jetstream.MsgIDHeader, tc.id)
		}
		if !reflect.DeepEqual(m.Header, want) {
			t.Fatalf("headers %v; want %v", m.Header, want)
		}
		m.Header.Add(jetstream.ExpectedLastSubjSeqHeader, "x")
		if tc.id != "" && m.Header.Get(jetstream.MsgIDHeader) != tc.id {
			t.Fatalf("an Add to the expected sequence changed the message id: %v", m.Header)
		}
	}
	base := testing.AllocsPerRun(100, func() { _, _ = encodeChecked(envs, true) })
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := newMessage("acl.events.acme.principal.bob", 12, "c1", envs, false); err != nil {
			t.Fatal(err)
		}
	})
	// The rest: the validation's decoding, the encoding, the message and its header map.
	if dec := testing.AllocsPerRun(100, func() { _, _ = Decode(e) }); n-base-dec > 4 {
		t.Fatalf("newMessage: %.0f allocations beside the encoding's %.0f and decoding's %.0f; want at most 4", n-base-dec, base, dec)
	}
}
