package events_test

import (
	"errors"
	"testing"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// seatItems is the kind of batch the design keeps atomic batches for: a tenant's seat count
// and a principal's level, written together.
func seatItems(t *testing.T, cmd string, tenantExp, bobExp uint64) []events.BatchItem {
	t.Helper()
	tenant, err := events.New(events.Meta{Tenant: "acme", Aggregate: events.TenantRef("acme"), Actor: "system",
		CommandID: cmd, Time: testTime}, events.SeatChangedV1{Principal: "bob", From: "disabled", To: "full"})
	if err != nil {
		t.Fatal(err)
	}
	tsubj, err := events.Subject("acme", events.TenantRef("acme"))
	if err != nil {
		t.Fatal(err)
	}
	return []events.BatchItem{
		{Subject: tsubj, Expected: tenantExp, MsgID: cmd + ":tenant", Events: []events.Envelope{tenant}},
		{Subject: subject(t, "acme", "bob"), Expected: bobExp, MsgID: cmd + ":bob",
			Events: []events.Envelope{principalEnv(t, "acme", "bob", cmd, events.AccessLevelSetV1{Level: "full", From: "disabled"})}},
	}
}

func TestAppendAtomic(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)

	a, err := st.AppendAtomic(ctx, seatItems(t, "c1", 0, 0))
	if err != nil || a != (events.Appended{Seq: 2, Count: 2}) {
		t.Fatalf("batch = %+v, %v; want seq 2", a, err)
	}
	for i, it := range seatItems(t, "c1", 0, 0) {
		msgs, err := st.Load(ctx, it.Subject, 0)
		if err != nil || len(msgs) != 1 || msgs[0].Seq != uint64(i+1) || msgs[0].Events[0].Type != it.Events[0].Type {
			t.Fatalf("load %s = %+v, %v; want one %s at seq %d", it.Subject, msgs, err, it.Events[0].Type, i+1)
		}
	}

	// Retrying the committed batch (its answer lost) writes nothing and answers its sequence.
	d, err := st.AppendAtomic(ctx, seatItems(t, "c1", 0, 0))
	if err != nil || d != (events.Appended{Seq: 2, Duplicate: true}) {
		t.Fatalf("retry = %+v, %v; want seq 2, duplicate", d, err)
	}

	tests := []struct {
		name      string
		tenantExp uint64
		bobExp    uint64
	}{
		{"first item stale", 0, 2},
		{"last item stale", 1, 0},
		{"last item ahead", 1, 7},
		{"both stale", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.AppendAtomic(ctx, seatItems(t, "x-"+tc.name, tc.tenantExp, tc.bobExp))
			if !errors.Is(err, events.ErrConflict) {
				t.Fatalf("batch = %v; want ErrConflict", err)
			}
			if n := lastSeq(t, st); n != 2 {
				t.Fatalf("last seq %d after a failed batch; want 2 (nothing stored)", n)
			}
		})
	}
	if a, err := st.AppendAtomic(ctx, seatItems(t, "c2", 1, 2)); err != nil || a.Seq != 4 {
		t.Fatalf("second batch = %+v, %v; want seq 4", a, err)
	}
}

func TestAppendAtomicInvalid(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	sameSubject := seatItems(t, "c1", 0, 0)
	sameSubject[0] = sameSubject[1]
	sameSubject[0].MsgID = "other"
	sameID := seatItems(t, "c1", 0, 0)
	sameID[1].MsgID = sameID[0].MsgID
	badEvent := seatItems(t, "c1", 0, 0)
	badEvent[1].Events[0].Type = "nope"
	badSubject := seatItems(t, "c1", 0, 0)
	badSubject[1].Subject = "acl.events.acme.principal.b ob"
	tooMany := make([]events.BatchItem, 1001)

	tests := []struct {
		name  string
		items []events.BatchItem
	}{
		{"empty", nil},
		{"one subject twice", sameSubject},
		{"one message id twice", sameID},
		{"bad event in the last item", badEvent},
		{"bad subject", badSubject},
		{"more than 1000 items", tooMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := st.AppendAtomic(ctx, tc.items); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("batch = %v; want ErrInvalid", err)
			}
			if n := lastSeq(t, st); n != 0 {
				t.Fatalf("last seq %d; want 0", n)
			}
		})
	}
	// A batch of one is a plain append.
	one := seatItems(t, "c1", 0, 0)[:1]
	if a, err := st.AppendAtomic(ctx, one); err != nil || a.Seq != 1 {
		t.Fatalf("batch of one = %+v, %v; want seq 1", a, err)
	}
}

// TestAppendAtomicFollows: an item may write a subject again after an earlier item of the batch
// (Follows, no expected sequence of its own); items are stored one after another, so their
// sequences follow from the last one's. Follows without an earlier item, or a subject twice
// without Follows, is refused before anything is sent.
func TestAppendAtomicFollows(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	bob := subject(t, "acme", "bob")
	env1 := principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "a"})
	env2 := principalEnv(t, "acme", "bob", "c2", events.RoleAssignedV1{Role: "b"})
	ann := principalEnv(t, "acme", "ann", "c3", events.RoleAssignedV1{Role: "a"})
	bad := [][]events.BatchItem{
		{{Subject: bob, MsgID: "c1", Events: []events.Envelope{env1}}, {Subject: bob, MsgID: "c2", Events: []events.Envelope{env2}}},
		{{Subject: bob, MsgID: "c1", Follows: true, Events: []events.Envelope{env1}}, {Subject: subject(t, "acme", "ann"), MsgID: "c3", Events: []events.Envelope{ann}}},
	}
	for i, items := range bad {
		if _, err := st.AppendAtomic(ctx, items); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("batch %d: %v, want ErrInvalid", i, err)
		}
	}
	a, err := st.AppendAtomic(ctx, []events.BatchItem{
		{Subject: bob, MsgID: "c1", Events: []events.Envelope{env1}},
		{Subject: subject(t, "acme", "ann"), MsgID: "c3", Events: []events.Envelope{ann}},
		{Subject: bob, MsgID: "c2", Follows: true, Events: []events.Envelope{env2}},
	})
	if err != nil || a.Count != 3 || a.Seq != 3 {
		t.Fatalf("batch = %+v, %v; want 3 messages up to seq 3", a, err)
	}
	msgs, err := st.Load(ctx, bob, 0)
	if err != nil || len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Seq != 3 {
		t.Fatalf("bob's messages %+v, %v; want seqs 1 and 3", msgs, err)
	}
}
