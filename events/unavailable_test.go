package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestUnavailable: with the server gone, every operation fails with ErrUnavailable (the
// caller retries), and a running Follow ends with it instead of hanging.
func TestUnavailable(t *testing.T) {
	env := eventstest.Start(t)
	st := env.Store
	appendN(t, st, 3)
	followed := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		once := false
		followed <- st.Follow(context.Background(), 1, func([]events.Message) error {
			if !once {
				once = true
				close(started)
			}
			return nil
		})
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("follow delivered nothing")
	}
	env.Server.Shutdown()
	env.Server.WaitForShutdown()

	select {
	case err := <-followed:
		if !errors.Is(err, events.ErrUnavailable) {
			t.Fatalf("follow = %v; want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow still running after the server shut down")
	}
	e := principalEnv(t, "acme", "bob", "c", events.RoleAssignedV1{Role: "r"})
	subj := subject(t, "acme", "bob")
	tests := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"append", func(ctx context.Context) error {
			_, err := st.Append(ctx, subj, 0, "c", []events.Envelope{e})
			return err
		}},
		{"atomic batch", func(ctx context.Context) error {
			_, err := st.AppendAtomic(ctx, seatItems(t, "b", 0, 0))
			return err
		}},
		{"load", func(ctx context.Context) error { _, err := st.Load(ctx, subj, 0); return err }},
		{"last seq", func(ctx context.Context) error { _, err := st.LastSeq(ctx); return err }},
		{"seq at time", func(ctx context.Context) error { _, err := st.SeqAtTime(ctx, time.Now()); return err }},
		{"read", func(ctx context.Context) error {
			return st.Read(ctx, 1, 0, func([]events.Message) error { return nil })
		}},
		{"follow", func(ctx context.Context) error {
			return st.Follow(ctx, 1, func([]events.Message) error { return nil })
		}},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := tc.do(ctx)
		cancel()
		if !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("%s = %v; want ErrUnavailable", tc.name, err)
		}
	}
}

// TestLoadLongHistory: Load of a subject with more messages than one direct get batch (1000)
// asks again and returns them all.
func TestLoadLongHistory(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	const n = 2300
	for i := range n {
		e := principalEnv(t, "acme", "bob", "c", events.RoleAssignedV1{Role: "r"})
		if _, err := st.Append(ctx, subj, uint64(i), "", []events.Envelope{e}); err != nil {
			t.Fatal(err)
		}
	}
	for _, after := range []uint64{0, 999, 1000, 1001, 2299, 2300} {
		msgs, err := st.Load(ctx, subj, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != n-int(after) {
			t.Fatalf("load after %d: %d messages; want %d", after, len(msgs), n-int(after))
		}
		for i, m := range msgs {
			if m.Seq != after+uint64(i)+1 {
				t.Fatalf("load after %d: message %d has seq %d", after, i, m.Seq)
			}
		}
	}
}
