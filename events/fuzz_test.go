package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeEnvelope decodes arbitrary bytes as the data of a stored message (a JSON array of
// envelopes) and each envelope's data as its type. Nothing may panic; every refusal wraps
// ErrInvalid; what is accepted encodes and decodes back to itself; the fast scanner and
// encoding/json agree on whatever the scanner accepts. Seeds are in
// testdata/fuzz/FuzzDecodeEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`[{"id":"x","type":"role_assigned","schema":1,"tenant":"acme","aggregate":{"kind":"principal","id":"bob"},"actor":"system","command_id":"c","time":"2025-03-01T12:00:00Z","data":{"role":"r"}}]`))
	f.Add([]byte(`[{"type":"record_assigned","schema":1,"data":{"principal":"bob"}}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"type":"role_assigned"}`))
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast scanner agrees with encoding/json on everything it accepts.
		if fast, ok := fastEnvelopes(data); ok {
			var std []Envelope
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatalf("fast scanner accepted what encoding/json refuses (%v): %q", err, data)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Fatalf("fast scanner %#v; encoding/json %#v for %q", fast, std, data)
			}
		}
		msg, err := decodeMessage("acl.events.acme.principal.bob", 7, at, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode message: %v does not wrap ErrInvalid", err)
			}
			return
		}
		for _, e := range msg.Events {
			// fastData agrees with encoding/json on this data whatever its type says.
			for _, typ := range AllTypes {
				agree(t, typ, e.Schema, e.Data)
			}
			if e.Seq != 7 {
				t.Fatalf("seq %d; want 7", e.Seq)
			}
			d, err := Decode(e)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode %s: %v does not wrap ErrInvalid", e.Type, err)
			}
			if verr := e.Validate(); verr != nil && !errors.Is(verr, ErrInvalid) {
				t.Fatalf("validate: %v does not wrap ErrInvalid", verr)
			}
			if err != nil {
				continue
			}
			// What was accepted survives a second trip through JSON unchanged.
			raw, err := json.Marshal(d)
			if err != nil {
				t.Fatalf("encode %T: %v", d, err)
			}
			again := e
			again.Data, again.Schema = raw, d.SchemaVersion()
			d2, err := Decode(again)
			if err != nil || !reflect.DeepEqual(normalise(d2), normalise(d)) {
				t.Fatalf("second trip of %s: %#v, %v; want %#v", e.Type, d2, err, d)
			}
		}
	})
}

// normalise compares decoded data through JSON, where a nil and an empty slice or map are
// both absent or null-equivalent only if they encode alike.
func normalise(d Data) string {
	b, _ := json.Marshal(d)
	return string(b)
}
