package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestCallersCannotWriteTheLog: a connection that is not the owner's publishes an event on an
// event subject by core NATS and by a JetStream publish, and tries to make a stream that would
// capture the command subjects: each is refused, and the stream's last sequence does not move.
// Reading the log stays open to the anonymous caller (stream info, gets, an ordered consumer).
func TestCallersCannotWriteTheLog(t *testing.T) {
	env := eventstest.Start(t)
	appendN(t, env.Store, 3)
	violations := make(chan error, 16)
	nc := env.Connect(t, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	subject := "acl.events.acme.principal.p1"
	if err := nc.Publish(subject, []byte(`[{"id":"forged"}]`)); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("core publish: %v, want a permissions violation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("core publish of an event: no permissions violation within 30 s")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if ack, err := js.Publish(ctx, subject, []byte(`[{"id":"forged"}]`)); err == nil {
		t.Fatalf("JetStream publish of an event acknowledged: %+v", ack)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := js.CreateStream(ctx2, jetstream.StreamConfig{Name: "CAPTURE", Subjects: []string{"acl.commands.>"}}); err == nil {
		t.Fatal("a caller made a stream")
	}
	if n := lastSeq(t, env.Store); n != 3 {
		t.Fatalf("last sequence %d after the forgeries, want 3", n)
	}
	// Nor may it answer in acld's place: subscribing to the command or query subjects is refused.
	for len(violations) > 0 {
		<-violations // the JetStream publish's
	}
	for _, subject := range []string{events.CommandSubjects, events.QuerySubjects, "acl.commands.acme.AssignRole"} {
		if _, err := nc.QueueSubscribe(subject, "acld", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		for refused := false; !refused; {
			select {
			case err := <-violations:
				if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "Publish") {
					continue // the forged publishes' own, handed over late on a loaded machine
				}
				if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "Subscription") {
					t.Fatalf("subscribe to %s: %v", subject, err)
				}
				refused = true
			case <-time.After(30 * time.Second):
				t.Fatalf("a caller subscribed to %s", subject)
			}
		}
	}
	// Reading: stream info, a direct get and an ordered consumer all work.
	stream, err := js.Stream(ctxT(t), events.DefaultStream)
	if err != nil {
		t.Fatalf("stream info as a caller: %v", err)
	}
	if got := stream.CachedInfo().State.Msgs; got != 3 {
		t.Fatalf("stream info says %d messages, want 3", got)
	}
	if _, err := stream.GetMsg(ctxT(t), 2); err != nil {
		t.Fatalf("get message 2 as a caller: %v", err)
	}
	cons, err := stream.OrderedConsumer(ctxT(t), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer as a caller: %v", err)
	}
	for i := range 3 {
		if _, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second)); err != nil {
			t.Fatalf("message %d through the caller's consumer: %v", i+1, err)
		}
	}
}

// TestCallerWithoutReadLog: a caller without ReadLog may send commands but not read the log;
// the server refuses a connection without credentials when callers are listed.
func TestCallerWithoutReadLog(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	env := eventstest.StartWith(t, events.ServerConfig{Owner: owner, Listen: "127.0.0.1:-1", Callers: []events.Caller{
		{Name: "billing", User: "billing", Password: "secret"},
		{Name: "audit", User: "audit", Password: "other", ReadLog: true},
	}}, events.StoreConfig{})
	url := env.Server.ClientURL()
	if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a connection without credentials: %v, want an authorization violation", err)
	}
	if _, err := nats.Connect(url, nats.UserInfo("billing", "wrong")); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a wrong password: %v, want an authorization violation", err)
	}
	// The service: the owner answers acl.commands.> and sees the caller's identity.
	got := make(chan string, 1)
	sub, err := env.Conn.Subscribe(events.CommandSubjects, func(m *nats.Msg) {
		name, ok := events.RequestCaller(m.Header)
		if !ok {
			name = "?"
		}
		got <- name
		m.Respond([]byte("ok"))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	env.Conn.Flush()
	billing := env.Connect(t, nats.UserInfo("billing", "secret"))
	forged := nats.NewMsg("acl.commands.acme.AssignRole")
	forged.Header.Set("Nats-Request-Info", `{"acc":"caller-audit"}`) // the server replaces it
	if _, err := billing.RequestMsg(forged, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if name := <-got; name != "billing" {
		t.Fatalf("request seen as %q, want billing", name)
	}
	js, _ := jetstream.New(billing)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := js.Stream(ctx, events.DefaultStream); err == nil {
		t.Fatal("billing read the stream without ReadLog")
	}
	audit := env.Connect(t, nats.UserInfo("audit", "other"))
	ajs, _ := jetstream.New(audit)
	if _, err := ajs.Stream(ctxT(t), events.DefaultStream); err != nil {
		t.Fatalf("audit reads the stream: %v", err)
	}
}

// TestStoreMovesIntoItsAccount: a store written before the layout (the global account) is
// moved into the store account at the next start, history intact.
func TestStoreMovesIntoItsAccount(t *testing.T) {
	env := eventstest.Start(t)
	appendN(t, env.Store, 4)
	dir := env.Dir
	env.Stop()
	if err := os.Rename(filepath.Join(dir, "jetstream", events.StoreAccount), filepath.Join(dir, "jetstream", "$G")); err != nil {
		t.Fatal(err)
	}
	env.Restart(t)
	if n := lastSeq(t, env.Store); n != 4 {
		t.Fatalf("after the move: last sequence %d, want 4", n)
	}
}

func TestLayoutValidate(t *testing.T) {
	owner, _ := events.NewOwner()
	bad := []events.Layout{
		{Owner: "nope"},
		{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a b", User: "u", Password: "p"}}},
		{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a", User: "u"}}},
		{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a", Nkey: "SUAB"}}},
		{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a", User: "u", Password: `p"`}}},
		{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a", User: "u", Password: "p"}, {Name: "a", User: "v", Password: "p"}}},
	}
	for _, l := range bad {
		if err := l.Validate(); !errors.Is(err, events.ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", l, err)
		}
	}
	good := events.Layout{Owner: owner.PublicKey(), Callers: []events.Caller{{Name: "a", User: "u", Password: "$2a$11$abc"}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := good.Config(); !strings.Contains(c, `"caller-a"`) || strings.Contains(c, "no_auth_user") {
		t.Fatalf("config:\n%s", c)
	}
}

// TestReadersMakePullConsumersOnly: a caller that may read the log (auditor) asks for push
// consumers of the stream whose deliver subject is another caller's change-feed subscription,
// by the JetStream client and by hand-written requests (a field name in another case, a
// second JSON value after the first, the name-less subject): each is refused, no consumer is
// made, and the subscriber receives nothing (without the check, nats-server published the
// stream's messages there as acld's account: forged changes, on a subject where nothing but
// the changes stream may publish). Its pull consumer (the control) still reads the stream.
func TestReadersMakePullConsumersOnly(t *testing.T) {
	owner, err := events.NewOwner()
	if err != nil {
		t.Fatal(err)
	}
	env := eventstest.StartWith(t, events.ServerConfig{Owner: owner, Callers: []events.Caller{
		{Name: "auditor", User: "auditor", Password: "a", ReadLog: true},
		{Name: "billing", User: "billing", Password: "b", Changes: []string{"acme"}},
	}}, events.StoreConfig{})
	appendN(t, env.Store, 3)
	billing := env.Connect(t, nats.UserInfo("billing", "b"))
	victim := events.ChangesSubject("acme", "bob")
	sub, err := billing.SubscribeSync(victim) // a literal subscription: push delivery needs one
	if err != nil {
		t.Fatal(err)
	}
	billing.Flush()
	auditor := env.Connect(t, nats.UserInfo("auditor", "a"))
	js, err := jetstream.New(auditor)
	if err != nil {
		t.Fatal(err)
	}
	create := "$JS.API.CONSUMER.CREATE." + events.DefaultStream
	raw := []struct{ name, subject, body string }{
		{"field in capitals", create + ".p2", `{"stream_name":"ACL_EVENTS","config":{"name":"p2","DELIVER_SUBJECT":"` + victim + `"}}`},
		{"a second JSON value", create + ".p3", `{"stream_name":"ACL_EVENTS","config":{"name":"p3"}} {"stream_name":"ACL_EVENTS","config":{"name":"p3","deliver_subject":"` + victim + `"}}`},
		{"the name-less subject", create, `{"stream_name":"ACL_EVENTS","config":{"deliver_subject":"` + victim + `"}}`},
	}
	if _, err := js.CreateConsumer(ctxT(t), events.DefaultStream, jetstream.ConsumerConfig{Name: "p1", DeliverSubject: victim}); err == nil {
		t.Error("the JetStream client made a push consumer delivering to another caller's changes")
	}
	for _, r := range raw {
		m, err := auditor.Request(r.subject, []byte(r.body), 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		var ans struct {
			Error *struct{ Description string } `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &ans); err != nil || ans.Error == nil {
			t.Errorf("%s: %s, want an error", r.name, m.Data)
		}
	}
	info, err := jetstream.New(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Stream(ctxT(t), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d consumers made for the auditor, want none", n)
	}
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("billing received %.80s on %s from a consumer of the auditor", m.Data, m.Subject)
	}
	// The control: a pull consumer, as aclctl tail makes, reads the stream.
	cons, err := js.OrderedConsumer(ctxT(t), events.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer as a reader: %v", err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second)); err != nil {
		t.Fatalf("first message through the reader's consumer: %v", err)
	}
}
