package events_test

import (
	"errors"
	"testing"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

func TestAppendAndLoad(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	e1 := principalEnv(t, "acme", "bob", "c1", events.EmailSetV1{Email: "b@acme.test"})
	e2 := principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "technician"})

	a, err := st.Append(ctx, subj, 0, "c1", []events.Envelope{e1, e2})
	if err != nil || a.Seq != 1 || a.Duplicate {
		t.Fatalf("append = %+v, %v; want seq 1", a, err)
	}
	msgs, err := st.Load(ctx, subj, 0)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(msgs) != 1 || len(msgs[0].Events) != 2 {
		t.Fatalf("load = %+v; want one message with two events", msgs)
	}
	for i, want := range []events.Envelope{e1, e2} {
		got := msgs[0].Events[i]
		if got.ID != want.ID || got.Seq != 1 || got.Type != want.Type || string(got.Data) != string(want.Data) {
			t.Errorf("event %d = %+v; want %+v with seq 1", i, got, want)
		}
	}
	if _, err := st.Append(ctx, subj, 0, "c2", []events.Envelope{e1}); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("append expecting empty subject = %v; want ErrConflict", err)
	}
}
