package events_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestChangesListenersSeeCallers: a caller's subscription to the change feed, made in its own
// account through the import of acl.changes.>, is seen in the store account as soon as the
// caller has flushed it, by principal, by tenant (a wildcard) and for gaps, and as a tenant
// with a listener once Refresh has read the subscriptions; a subscription the caller's
// permissions refuse is not; an unsubscribed one stops counting; acld's own account counts too.
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
	type want struct{ acme, everyone, bob, ann, gaps, beta, betaEveryone, betaBob bool }
	check := func(step string, w want) {
		t.Helper()
		l.Refresh()
		got := want{l.Tenant("acme"), l.Everyone("acme"), l.Principal("acme", "bob"), l.Principal("acme", "ann"), l.Gaps("acme"),
			l.Tenant("beta"), l.Everyone("beta"), l.Principal("beta", "bob")}
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
	check("billing follows bob", want{acme: true, bob: true})
	refused := subscribe(billing, events.ChangesPrefix+".beta.>") // not a tenant billing may follow
	check("billing refused beta", want{acme: true, bob: true})
	all := subscribe(billing, events.ChangesPrefix+".acme.>")
	check("billing follows acme", want{acme: true, everyone: true, bob: true, ann: true, gaps: true})
	for _, s := range []*nats.Subscription{bob, all, refused} {
		s.Unsubscribe()
	}
	billing.Flush()
	check("billing unsubscribed", want{})
	acld := env.Connect(t, owner.Option())
	other := subscribe(acld, "acl.events.>")
	check("the store account follows something else", want{})
	every := subscribe(acld, events.ChangesPrefix+".*.principal.*")
	check("the store account follows every principal", want{acme: true, everyone: true, bob: true, ann: true, beta: true, betaEveryone: true, betaBob: true})
	every.Unsubscribe()
	other.Unsubscribe()
	subscribe(acld, "acl.>")
	check("the store account follows acl.>", want{acme: true, everyone: true, bob: true, ann: true, gaps: true, beta: true, betaEveryone: true, betaBob: true})
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
	l.Refresh()
	if !l.Tenant("acme") || l.Tenant("beta") {
		t.Fatalf("tenants listened to: acme %v beta %v, want acme alone", l.Tenant("acme"), l.Tenant("beta"))
	}
	if !l.Principal("acme", "bob") || l.Principal("acme", "ann") || l.Everyone("acme") {
		t.Fatalf("bob %v ann %v everyone %v, want bob alone", l.Principal("acme", "bob"), l.Principal("acme", "ann"), l.Everyone("acme"))
	}
	s.Unsubscribe()
	nc.Flush()
	l.Refresh()
	if l.Principal("acme", "bob") || l.Tenant("acme") {
		t.Fatal("bob still listened to after the unsubscription")
	}
}

// TestChangesListenersTenantManySubscriptions: Tenant answers as nats-server's
// SubjectsCollide(subscription, acl.changes.<tenant>.>) does for every shape of subscription,
// and with a subscription per principal (a session service) it is a lookup: the review of
// round 14 measured ~1.9 ms a call at 1,000 subscriptions when it walked them all.
func TestChangesListenersTenantManySubscriptions(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	env := eventstest.StartWith(t, events.ServerConfig{Owner: owner}, events.StoreConfig{})
	l, err := events.NewChangesListeners(env.Server)
	if err != nil {
		t.Fatal(err)
	}
	nc := env.Connect(t, owner.Option()) // the store account: a caller may not subscribe beyond acl.changes.>
	shapes := []string{"acl.changes.acme", "acl.changes.*", "acl.changes.acme.gap", "acl.changes.acme.*.bob",
		"acl.*.acme.>", "acl.changes.*.gap", "acl.>", ">", "*.changes.>", "acl.changes.>"}
	tenants := []string{"acme", "beta"}
	for _, shape := range shapes {
		s, err := nc.SubscribeSync(shape)
		if err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		l.Refresh()
		for _, tenant := range tenants {
			want := server.SubjectsCollide(shape, events.ChangesPrefix+"."+tenant+".>")
			if got := l.Tenant(tenant); got != want {
				t.Errorf("subscribed to %s: Tenant(%s) %v, want %v", shape, tenant, got, want)
			}
		}
		s.Unsubscribe()
		nc.Flush()
	}
	for i := range 1000 {
		if _, err := nc.SubscribeSync(events.ChangesSubject("acme", fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	l.Refresh()
	if !l.Tenant("acme") || l.Tenant("beta") {
		t.Fatalf("1,000 subscriptions in acme: Tenant(acme) %v, Tenant(beta) %v", l.Tenant("acme"), l.Tenant("beta"))
	}
	if a := testing.AllocsPerRun(20, func() { l.Tenant("beta") }); a > 0 {
		t.Errorf("Tenant with 1,000 subscriptions: %.0f allocations a call, want 0", a)
	}
}
