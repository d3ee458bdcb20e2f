package commands

import (
	"reflect"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestCloneState: a clone equals its original, and applying events to the clone leaves the
// original as it was (the cache shares originals between concurrent decisions).
func TestCloneState(t *testing.T) {
	env := func(agg events.AggregateRef, cmd string, seq uint64, d events.Data) events.Envelope {
		e, err := events.New(events.Meta{Tenant: "acme", Aggregate: agg, Actor: "system", CommandID: cmd, CommandHash: "h"}, d)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = seq
		return e
	}
	preset, err := aggregates.Preset("reconpro")
	if err != nil {
		t.Fatal(err)
	}
	tref, pref, rref := events.TenantRef("acme"), events.PrincipalRef("bob"), events.RecordAggregate("case", "c1")
	cases := []struct {
		name   string
		ref    events.AggregateRef
		before []events.Data
		after  []events.Data
	}{
		{"tenant", tref,
			[]events.Data{preset, events.UnitDefinedV1{Unit: team("t1")}, events.SubscriptionSetV1{Features: []string{"f"}, Seats: map[string]int{"full": 2}},
				events.SeatChangedV1{Principal: "a", From: "disabled", To: "full"}},
			[]events.Data{events.RolePermissionGrantedV1{Role: "accountant", Grant: events.Grant{Permission: "user.view", Scope: "all"}},
				events.UnitDefinedV1{Unit: team("t2")}, events.SeatChangedV1{Principal: "b", From: "disabled", To: "full"}, events.RoleDeletedV1{Role: "client"}}},
		{"principal", pref,
			[]events.Data{events.PrincipalRegisteredV1{Principal: "bob", Kind: "staff", Units: []events.UnitRef{team("t1")}}, events.RoleAssignedV1{Role: "x"}},
			[]events.Data{events.RoleAssignedV1{Role: "y"}, events.UnitJoinedV1{Unit: team("t2")}, events.PermissionDeniedV1{Permission: "a.b"}}},
		{"record", rref,
			[]events.Data{events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "c1", Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}}}}},
			[]events.Data{events.RecordAssignedV2{Principal: "carl", Relation: "assignee"}, events.RecordRemovedV1{}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := newState(c.ref)
			for i, d := range c.before {
				if err := applyEnvelope(orig, env(c.ref, "c1", uint64(i+1), d)); err != nil {
					t.Fatal(err)
				}
			}
			keep := newState(c.ref)
			for i, d := range c.before {
				_ = applyEnvelope(keep, env(c.ref, "c1", uint64(i+1), d))
			}
			clone := cloneState(orig)
			if !reflect.DeepEqual(clone, orig) {
				t.Fatal("the clone differs from its original")
			}
			for i, d := range c.after {
				if err := applyEnvelope(clone, env(c.ref, "c2", uint64(100+i), d)); err != nil {
					t.Fatal(err)
				}
			}
			// keep has the same events as orig but a different envelope id per event: compare
			// what Apply writes apart from ids.
			if stateSeq(orig) != stateSeq(keep) || remembered(orig) != 1 || reflect.DeepEqual(clone, orig) {
				t.Fatalf("applying to the clone changed the original (seq %d, commands %v)", stateSeq(orig), remembered(orig))
			}
			assertSameShape(t, orig, keep)
		})
	}
}

// assertSameShape compares two states built from the same data with different event ids: maps
// and slices must have the same lengths.
func assertSameShape(t *testing.T, a, b any) {
	t.Helper()
	switch x := a.(type) {
	case *aggregates.Tenant:
		y := b.(*aggregates.Tenant)
		if len(x.Roles) != len(y.Roles) || len(x.Units) != len(y.Units) || !reflect.DeepEqual(x.SeatHolders, y.SeatHolders) ||
			len(x.Roles["accountant"].Def.Grants) != len(y.Roles["accountant"].Def.Grants) || len(x.Roles["accountant"].GrantEvents) != len(y.Roles["accountant"].GrantEvents) {
			t.Fatalf("tenant changed: roles %d/%d units %d/%d seats %v/%v", len(x.Roles), len(y.Roles), len(x.Units), len(y.Units), x.SeatHolders, y.SeatHolders)
		}
	case *aggregates.Principal:
		y := b.(*aggregates.Principal)
		if !reflect.DeepEqual(x.Roles, y.Roles) || !reflect.DeepEqual(x.Units, y.Units) || len(x.Prov) != len(y.Prov) || x.Denied != nil {
			t.Fatalf("principal changed: %+v", x)
		}
	case *aggregates.Record:
		y := b.(*aggregates.Record)
		if !reflect.DeepEqual(x.Assignees, y.Assignees) || x.Removed || len(x.Prov) != len(y.Prov) {
			t.Fatalf("record changed: %+v", x)
		}
	}
}

// remembered is the number of commands a state remembers.
func remembered(st any) int {
	if t, ok := st.(*aggregates.Tenant); ok {
		return len(t.Commands)
	}
	return stateCommands(st).Len()
}
