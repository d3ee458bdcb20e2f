package events_test

import (
	"fmt"
	"testing"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestRestartKeepsAcknowledged: every acknowledged message is there after a restart on the same
// directory, with the same sequence and events, and de-duplication and expected sequences
// carry on from where they were.
func TestRestartKeepsAcknowledged(t *testing.T) {
	for _, sync := range []string{"", "always", "2m"} {
		t.Run("sync="+sync, func(t *testing.T) {
			env := eventstest.StartWith(t, events.ServerConfig{Sync: sync}, events.StoreConfig{})
			ids := appendN(t, env.Store, 200)
			batch := seatItems(t, "b1", 0, 0)
			// p-subjects were written by appendN; the batch goes to the tenant and bob.
			a, err := env.Store.AppendAtomic(ctxT(t), batch)
			if err != nil || a.Seq != 202 {
				t.Fatalf("batch = %+v, %v; want seq 202", a, err)
			}
			before := readAll(t, env.Store)

			env.Restart(t)

			after := readAll(t, env.Store)
			if len(after) != len(before) || len(after) != 202 {
				t.Fatalf("%d messages after restart; %d before, want 202", len(after), len(before))
			}
			for i := range before {
				b, a := before[i], after[i]
				if a.Seq != b.Seq || a.Subject != b.Subject || !a.Time.Equal(b.Time) || fmt.Sprint(a.Events) != fmt.Sprint(b.Events) {
					t.Fatalf("message %d after restart %+v; before %+v", i, a, b)
				}
				if a.Seq <= 200 && a.Events[0].ID != ids[a.Seq] {
					t.Fatalf("seq %d holds %s; was acknowledged as %s", a.Seq, a.Events[0].ID, ids[a.Seq])
				}
			}
			// A retry of the last batch is still recognised, and appends go on after 202.
			if d, err := env.Store.AppendAtomic(ctxT(t), batch); err != nil || d != (events.Appended{Seq: 202, Duplicate: true}) {
				t.Fatalf("batch retry after restart = %+v, %v; want 202, duplicate", d, err)
			}
			e := principalEnv(t, "acme", "bob", "c-after", events.RoleAssignedV1{Role: "r"})
			if a, err := env.Store.Append(ctxT(t), subject(t, "acme", "bob"), 202, "c-after", []events.Envelope{e}); err != nil || a.Seq != 203 {
				t.Fatalf("append after restart = %+v, %v; want 203", a, err)
			}
		})
	}
}

// readAll reads the whole stream.
func readAll(t testing.TB, st *events.Store) []events.Message {
	t.Helper()
	var out []events.Message
	if err := st.Read(ctxT(t), 1, 0, func(msgs []events.Message) error {
		out = append(out, msgs...)
		return nil
	}); err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}
