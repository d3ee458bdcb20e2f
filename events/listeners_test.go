package events_test

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestChangesListenersSeeCallers: a caller's subscription to the change feed, made in its own
// account through the import of acl.changes.>, is seen in the store account as soon as the
// caller has flushed it, by principal, by tenant (a wildcard) and for gaps; a subscription
// the caller's permissions refuse is not; an unsubscribed one stops counting; acld's own
// account counts too.
func TestChangesListenersSeeCallers(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	env := eventstest.StartWith(t, events.ServerConfig{Owner: owner, Callers: []events.Caller{
		{Name: "billing", User: "billing", Password: "secret", Changes: []string{"acme"}},
	}}, events.StoreConfig{})
	l, err := events.NewChangesListeners(env.Server)
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ everyone, bob, ann, gaps, betaEveryone, betaBob bool }
	check := func(step string, w want) {
		t.Helper()
		got := want{l.Everyone("acme"), l.Principal("acme", "bob"), l.Principal("acme", "ann"), l.Gaps("acme"),
			l.Everyone("beta"), l.Principal("beta", "bob")}
		if got != w {
			t.Fatalf("%s: listeners %+v, want %+v", step, got, w)
		}
	}
	check("nobody subscribed", want{})
	billing := env.Connect(t, nats.UserInfo("billing", "secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	subscribe := func(nc *nats.Conn, subject string) *nats.Subscription {
		t.Helper()
		s, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	bob := subscribe(billing, events.ChangesSubject("acme", "bob"))
	check("billing follows bob", want{bob: true})
	refused := subscribe(billing, events.ChangesPrefix+".beta.>") // not a tenant billing may follow
	check("billing refused beta", want{bob: true})
	all := subscribe(billing, events.ChangesPrefix+".acme.>")
	check("billing follows acme", want{everyone: true, bob: true, ann: true, gaps: true})
	for _, s := range []*nats.Subscription{bob, all, refused} {
		s.Unsubscribe()
	}
	billing.Flush()
	check("billing unsubscribed", want{})
	acld := env.Connect(t, owner.Option())
	subscribe(acld, events.ChangesPrefix+".*.principal.*")
	check("the store account follows every principal", want{everyone: true, bob: true, ann: true, betaEveryone: true, betaBob: true})
}

// TestChangesListenersAnonymous: without identities, the anonymous caller (every connection
// without credentials) is seen as well.
func TestChangesListenersAnonymous(t *testing.T) {
	env := eventstest.Start(t)
	l, err := events.NewChangesListeners(env.Server)
	if err != nil {
		t.Fatal(err)
	}
	nc := env.Connect(t)
	s, err := nc.SubscribeSync(events.ChangesSubject("acme", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if !l.Principal("acme", "bob") || l.Principal("acme", "ann") || l.Everyone("acme") {
		t.Fatalf("bob %v ann %v everyone %v, want bob alone", l.Principal("acme", "bob"), l.Principal("acme", "ann"), l.Everyone("acme"))
	}
	s.Unsubscribe()
	nc.Flush()
	if l.Principal("acme", "bob") {
		t.Fatal("bob still listened to after the unsubscription")
	}
}
