package events

import (
	"encoding/json"
	"testing"
	"time"
)

// sampleMessage is a stored message as Append writes it: one role_assigned envelope.
func sampleMessage(tb testing.TB) []byte {
	e, err := New(Meta{Tenant: "acme", Aggregate: PrincipalRef("p1234"), Actor: "system",
		CommandID: "0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10", Time: time.Now()}, RoleAssignedV1{Role: "technician"})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal([]Envelope{e})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeMessage: decoding the data of one stored message, the CPU cost of a replay
// per event besides delivery.
func BenchmarkDecodeMessage(b *testing.B) {
	data := sampleMessage(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeMessage("acl.events.acme.principal.p1234", 1, time.Time{}, data); err != nil {
			b.Fatal(err)
		}
	}
}
