package commands

import (
	"log/slog"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestPublishAssumedInPlace: the state of an aggregate assumed empty is the command's own, so
// its events apply to it without a copy, and the entry's state is what the events make of an
// empty state; a state read from the cache is copied, never changed.
func TestPublishAssumedInPlace(t *testing.T) {
	s := &Service{cache: newCache(nil, 100, slog.Default())}
	ref := events.RecordAggregate("case", "c1")
	env, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin", CommandID: "c1", Time: time.Now()},
		events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "c1", Owner: "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(snap *snapshot) *aggregates.Record {
		e, err := s.cache.entry("acme", ref)
		if err != nil {
			t.Fatal(err)
		}
		x := &execution{s: s, entries: []*entry{e}}
		x.publish(0, snap, []events.Envelope{env}, nil, 5)
		return e.snap.Load().state.(*aggregates.Record)
	}
	assumed := &snapshot{state: newState(ref), assumed: true}
	got := publish(assumed)
	if got != assumed.state || !got.Exists || got.Owner != "admin" || got.Seq != 5 || commandSeq(&got.Commands, "c1") != 5 {
		t.Fatalf("assumed: entry state %+v (the assumed one: %v)", got, got == assumed.state)
	}
	read := &snapshot{state: newState(ref)}
	got = publish(read)
	if got == read.state || read.state.(*aggregates.Record).Exists || !got.Exists {
		t.Fatalf("read: entry state %+v, the read state %+v", got, read.state)
	}
}

func commandSeq(c *aggregates.Commands, id string) uint64 {
	r, _ := c.Get(id)
	return r.Seq
}
