package commands

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// seatChurn gives the tenant a history: n principals moved to full and back to limited (two
// seat changes each), plus a role and a unit, so that every part of the state is non-empty.
func (e *testEnv) seatChurn(n int) {
	e.t.Helper()
	for i := range n {
		id := fmt.Sprintf("s%03d", i)
		e.person(id, aggregates.KindStaff, "", aggregates.LevelFull, nil)
		if i%2 == 0 {
			e.must("admin", &aggregates.SetAccessLevel{Principal: id, Level: aggregates.LevelLimited})
		}
	}
}

// tenantOf loads the tenant through the service's cache, as a command would, with the
// commands it remembers (kept out of the cached state, in the entry).
func tenantOf(t *testing.T, e *testEnv, s *Service) *aggregates.Tenant {
	t.Helper()
	ent, err := s.cache.entry("acme", events.TenantRef("acme"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.cache.fresh(e.ctx, ent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ent.withCommands(snap.state.(*aggregates.Tenant))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTenantSnapshot: an instance that loads a tenant with a long history writes a snapshot; a
// new instance starts from it and reads only the messages after it; both states equal the
// state replayed from the whole history, idempotency memory included, and the snapshot form
// round-trips.
func TestTenantSnapshot(t *testing.T) {
	e := startEnvWith(t, 1, Options{SnapshotAfter: -1}) // only the instances below write snapshots
	e.reconpro()
	e.seatChurn(20)
	want := e.state(events.TenantRef("acme")).(*aggregates.Tenant)

	// A new instance loads the whole history (more than SnapshotAfter events) and writes a
	// snapshot; Close waits for the write.
	first := e.addService(t, Options{SnapshotAfter: 10})
	if got := tenantOf(t, e, first); !reflect.DeepEqual(got, want) {
		t.Fatalf("full load differs from the replayed state:\n got %+v\nwant %+v", got, want)
	}
	first.Close()
	snaps, err := e.Store.OpenSnapshots(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	subject := "acl.events.acme.tenant.acme"
	if _, seq, err := snaps.Get(e.ctx, subject); err != nil || seq != want.Seq {
		t.Fatalf("snapshot at %d (%v), want at %d", seq, err, want.Seq)
	}

	// More history after the snapshot: the next instance reads the snapshot and this tail.
	for _, id := range []string{"s000", "s001", "s002"} {
		e.must("admin", &aggregates.SetAccessLevel{Principal: id, Level: aggregates.LevelFull})
	}
	e.must("admin", &aggregates.DefineUnit{Unit: team("t9")})
	want = e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	second := e.addService(t, Options{SnapshotAfter: 1000})
	if got := tenantOf(t, e, second); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot plus tail differs from the replayed state:\n got %+v\nwant %+v", got, want)
	}
	// A retry of an old seat command (its id is remembered through the snapshot) answers the
	// stored result and writes nothing.
	before := e.lastSeq()
	third := e.addService(t, Options{SnapshotAfter: 1000})
	if got := tenantOf(t, e, third); len(got.Commands) != len(want.Commands) {
		t.Fatalf("%d commands remembered, want %d", len(got.Commands), len(want.Commands))
	}
	for id, r := range want.Commands {
		got := tenantOf(t, e, third).Commands[id]
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("command %s remembered as %+v, want %+v", id, got, r)
		}
	}
	if e.lastSeq() != before {
		t.Fatal("loading from a snapshot wrote to the stream")
	}
}

// TestTenantSnapshotFallback: a snapshot that cannot be used (garbage, another version, another
// subject, or a state that does not match its sequence) is ignored and the whole history is
// loaded.
func TestTenantSnapshotFallback(t *testing.T) {
	e := startEnvWith(t, 1, Options{SnapshotAfter: -1})
	e.reconpro()
	e.seatChurn(5)
	want := e.state(events.TenantRef("acme")).(*aggregates.Tenant)
	snaps, err := e.Store.OpenSnapshots(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	subject := "acl.events.acme.tenant.acme"
	wrongSeq := *want
	wrongSeq.Seq--
	good, err := encodeTenantSnapshot(subject, want)
	if err != nil {
		t.Fatal(err)
	}
	other, err := encodeTenantSnapshot("acl.events.acme.tenant.other", want)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := encodeTenantSnapshot(subject, &wrongSeq)
	if err != nil {
		t.Fatal(err)
	}
	future := append([]byte(snapshotMagic), snapshotVersion+1)
	future = appendStr(future, subject)
	for name, data := range map[string][]byte{"garbage": []byte("{not json"), "version": future, "subject": other, "seq": stale,
		"truncated": good[:len(good)/2], "trailing": append(good[:len(good):len(good)], 0)} {
		t.Run(name, func(t *testing.T) {
			if err := snaps.Put(e.ctx, subject, want.Seq, data); err != nil {
				t.Fatal(err)
			}
			s := e.addService(t, Options{SnapshotAfter: 1000})
			if got := tenantOf(t, e, s); !reflect.DeepEqual(got, want) {
				t.Fatalf("with a %s snapshot the state differs:\n got %+v\nwant %+v", name, got, want)
			}
		})
	}
	// A snapshot past the stream's end is refused by the store.
	if err := snaps.Put(e.ctx, subject, e.lastSeq()+10, good); err != nil {
		t.Fatal(err)
	}
	if _, _, err := snaps.Get(e.ctx, subject); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("snapshot past the end: %v, want ErrNoSnapshot", err)
	}
}
