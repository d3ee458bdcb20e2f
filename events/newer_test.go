package events_test

import (
	"testing"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestNewer: whether a subject has a message after a sequence, other subjects' messages
// between or after not counting; asked by a direct get, and of the leader as on a replicated
// stream.
func TestNewer(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	bob, dora := subject(t, "acme", "bob"), subject(t, "acme", "dora")
	if _, err := st.Append(ctx, bob, 0, "c1", []events.Envelope{principalEnv(t, "acme", "bob", "c1", events.EmailSetV1{Email: "b@acme.test"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, dora, 0, "c2", []events.Envelope{principalEnv(t, "acme", "dora", "c2", events.EmailSetV1{Email: "d@acme.test"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, bob, 1, "c3", []events.Envelope{principalEnv(t, "acme", "bob", "c3", events.RoleAssignedV1{Role: "technician"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, dora, 2, "c4", []events.Envelope{principalEnv(t, "acme", "dora", "c4", events.RoleAssignedV1{Role: "technician"})}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subject string
		after   uint64
		want    bool
	}{
		{bob, 0, true},
		{bob, 1, true}, // 3
		{bob, 2, true},
		{bob, 3, false}, // dora's 4 does not count
		{bob, 9, false},
		{dora, 2, true},
		{dora, 4, false},
		{subject(t, "acme", "nobody"), 0, false},
	} {
		got, err := st.Newer(ctx, tc.subject, tc.after)
		if err != nil || got != tc.want {
			t.Errorf("Newer(%s, %d) = %v, %v; want %v", tc.subject, tc.after, got, err, tc.want)
		}
		got, err = events.NewerFromLeader(ctx, st, tc.subject, tc.after)
		if err != nil || got != tc.want {
			t.Errorf("NewerFromLeader(%s, %d) = %v, %v; want %v", tc.subject, tc.after, got, err, tc.want)
		}
	}
}
