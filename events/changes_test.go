package events_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestChangesOncePerIDAndTenant: two publishers (two acld instances) publish the same changes
// with the same ids; a caller allowed tenant acme receives each change once, on
// acl.changes.acme.principal.<id>, and may not subscribe to another tenant's changes; a
// caller may not publish on the changes subjects.
func TestChangesOncePerIDAndTenant(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	env := eventstest.StartWith(t, events.ServerConfig{Owner: owner, Callers: []events.Caller{
		{Name: "billing", User: "billing", Password: "secret", Changes: []string{"acme"}},
		{Name: "nosy", User: "nosy", Password: "other"},
	}}, events.StoreConfig{})
	violations := make(chan error, 8)
	billing := env.Connect(t, nats.UserInfo("billing", "secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	sub, err := billing.SubscribeSync(events.ChangesPrefix + ".acme.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := billing.SubscribeSync(events.ChangesPrefix + ".beta.>"); err != nil {
		t.Fatal(err)
	}
	billing.Flush()
	select {
	case err := <-violations:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("subscribing to beta's changes: %v, want a permissions violation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("billing subscribed to beta's changes")
	}
	// A caller without the right may not subscribe either, nor publish a forged change.
	nosy := env.Connect(t, nats.UserInfo("nosy", "other"))
	nsub, _ := nosy.SubscribeSync(events.ChangesPrefix + ".>")
	nosy.Publish(events.ChangesSubject("acme", "bob"), []byte(`{"forged":true}`))
	nosy.Flush()

	var pubs []*events.Changes
	for range 2 {
		nc := env.Connect(t, owner.Option())
		c, err := events.OpenChanges(ctxT(t), nc, 1)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, c)
	}
	for i := range 3 {
		for _, c := range pubs {
			id := "7.ev" + string(rune('a'+i)) + ".bob"
			if err := c.Publish(ctxT(t), "acme", "principal.bob", id, []byte(id)); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Three changes arrive (however slowly the machine delivers them), then nothing more for
	// a while: no repeat, not the forged one.
	var got []string
	for len(got) < 4 {
		wait := 30 * time.Second
		if len(got) == 3 {
			wait = 500 * time.Millisecond
		}
		m, err := sub.NextMsg(wait)
		if len(got) == 3 && errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if m.Subject != events.ChangesSubject("acme", "bob") {
			t.Fatalf("change on %s", m.Subject)
		}
		got = append(got, string(m.Data))
	}
	if strings.Join(got, " ") != "7.eva.bob 7.evb.bob 7.evc.bob" {
		t.Fatalf("received %q, want each of the 3 changes once (the forged one never)", got)
	}
	if m, err := nsub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("nosy received %s", m.Data)
	}
}

// TestChangesBoundedStillOnce: the changes stream keeps at most 16 MiB (it lives in acld's
// heap when embedded), and a change published again after the bound dropped its stored copy
// is still announced once: de-duplication is by the window's ids, not by what is stored.
func TestChangesBoundedStillOnce(t *testing.T) {
	env := eventstest.Start(t)
	c, err := events.OpenChanges(ctxT(t), env.Conn, 1)
	if err != nil {
		t.Fatal(err)
	}
	sub := env.Connect(t)
	first, err := sub.SubscribeSync(events.ChangesSubject("acme", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	if err := c.Publish(ctxT(t), "acme", "principal.bob", "1.first.bob", []byte("first")); err != nil {
		t.Fatal(err)
	}
	// 24 MiB of other changes push the first one out of the stream.
	big := make([]byte, 512<<10)
	for i := range 48 {
		if err := c.Publish(ctxT(t), "acme", "principal.carol", fmt.Sprintf("%d.big.carol", i+2), big); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jetstream.New(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctxT(t), events.ChangesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > 16<<20 || info.State.FirstSeq == 1 {
		t.Fatalf("changes stream holds %d bytes from seq %d: not bounded to 16 MiB", info.State.Bytes, info.State.FirstSeq)
	}
	if err := c.Publish(ctxT(t), "acme", "principal.bob", "1.first.bob", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if m, err := first.NextMsg(30 * time.Second); err != nil || string(m.Data) != "first" {
		t.Fatalf("first announcement: %v %v", m, err)
	}
	if m, err := first.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("announced twice: %q", m.Data)
	}
}
