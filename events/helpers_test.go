package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// testTime is a fixed event time: tests compare envelopes, so nothing depends on the clock.
var testTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// principalEnv builds a valid event on principal id of tenant with data d.
func principalEnv(t testing.TB, tenant, id, cmd string, d events.Data) events.Envelope {
	t.Helper()
	e, err := events.New(events.Meta{
		Tenant: tenant, Aggregate: events.PrincipalRef(id), Actor: "system",
		CommandID: cmd, Time: testTime,
	}, d)
	if err != nil {
		t.Fatalf("new envelope: %v", err)
	}
	return e
}

// subject is the subject of principal id of tenant.
func subject(t testing.TB, tenant, id string) string {
	t.Helper()
	s, err := events.Subject(tenant, events.PrincipalRef(id))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	return s
}

// ctxT is a context bounded for one test step.
func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lastSeq reads the stream's last sequence or fails.
func lastSeq(t testing.TB, s *events.Store) uint64 {
	t.Helper()
	n, err := s.LastSeq(ctxT(t))
	if err != nil {
		t.Fatalf("last seq: %v", err)
	}
	return n
}

// rawMsg reads stored message seq through JetStream itself, bypassing the store.
func rawMsg(t testing.TB, env *eventstest.Env, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	js, err := jetstream.New(env.Conn)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	st, err := js.Stream(ctxT(t), events.DefaultStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := st.GetMsg(ctxT(t), seq)
	if err != nil {
		t.Fatalf("get msg %d: %v", seq, err)
	}
	return m
}
