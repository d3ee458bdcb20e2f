package aggregates_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
)

// envelopesOf are the events a decision writes, as the command service stores them (cause: the
// command's name).
func envelopesOf(t *testing.T, cmd aggregates.Command, ws []aggregates.Write, now time.Time) []events.Envelope {
	t.Helper()
	b := cmd.Base()
	var out []events.Envelope
	for _, w := range ws {
		for _, d := range w.Events {
			env, err := events.New(events.Meta{Tenant: b.Tenant, Aggregate: w.Aggregate, Actor: b.Actor,
				CommandID: b.CommandID, Cause: cmd.Name(), Time: now}, d)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
	}
	return out
}

// writesEqual compares two decisions: the same aggregates, expected sequences and event data.
func writesEqual(a, b []aggregates.Write) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestCommandOfInvertsDecide drives random histories (and the commands the generator does not
// make: subscriptions, emails, role deletions) through Decide; for every command that writes,
// CommandOf of its events, of its events without their cause, and of each of its events alone
// (an export of one aggregate's history holds one side of a two-aggregate command) is a command
// of the same name, id and actor that Decide, on the same facts, turns into the same writes.
func TestCommandOfInvertsDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	written := map[string]int{}
	for seed := range uint64(4) {
		m := aggregates.NewMemory("acme")
		gen := aggregatestest.NewRandom(seed)
		n := 0
		issue := func(actor string, cmd aggregates.Command) {
			n++
			b := cmd.Base()
			b.Tenant, b.Actor, b.CommandID = "acme", actor, fmt.Sprintf("cmd-%d", n)
			ws, err := aggregates.Decide(m, cmd, now)
			if err != nil {
				return
			}
			evs := envelopesOf(t, cmd, ws, now)
			if len(evs) == 0 {
				return
			}
			groups := [][]events.Envelope{evs}
			noCause := make([]events.Envelope, len(evs))
			for i, e := range evs {
				e.Cause = ""
				noCause[i] = e
			}
			groups = append(groups, noCause)
			if len(evs) > 1 && cmd.Name() != "CreateTenant" {
				for _, e := range evs {
					groups = append(groups, []events.Envelope{e})
				}
			}
			for _, g := range groups {
				got, err := aggregates.CommandOf(g)
				if err != nil {
					t.Fatalf("seed %d: CommandOf(%s %v): %v", seed, cmd.Name(), g, err)
				}
				gb := got.Base()
				if got.Name() != cmd.Name() || gb.CommandID != b.CommandID || gb.Actor != b.Actor || gb.Tenant != b.Tenant {
					t.Fatalf("seed %d: CommandOf gave %s %+v for %s %+v", seed, got.Name(), *gb, cmd.Name(), *b)
				}
				again, err := aggregates.Decide(m, got, now)
				if err != nil || !writesEqual(again, ws) {
					t.Fatalf("seed %d: %s decided again from its events: %v\n%s\nwant\n%s", seed, cmd.Name(), err, js(again), js(ws))
				}
			}
			for _, e := range evs {
				written[e.Type]++
				if err := m.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
		}
		issue(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
			Admin: aggregates.RegisterPrincipal{Principal: aggregatestest.Admin, Kind: aggregates.KindStaff, Email: "admin@x.test"}})
		for _, cmd := range aggregatestest.Setup() {
			issue(aggregatestest.Admin, cmd)
		}
		for i := range 3000 {
			switch i % 100 {
			case 10:
				issue(aggregates.SystemActor, &aggregates.SetSubscription{Features: &[]string{}, Seats: map[string]int{"full": 3 + i%4}})
			case 20, 70:
				email := ""
				if i%3 == 0 {
					email = "other@x.test"
				}
				issue(aggregatestest.Admin, &aggregates.SetEmail{Principal: aggregatestest.Principals[i%6], Email: &email})
			case 30:
				for role := range m.T.Roles {
					if strings.Contains(role, "_") { // the generator's roles: staff_1, ...
						issue(aggregatestest.Admin, &aggregates.DeleteRole{Role: role})
					}
				}
			default:
				issue(gen.Command(m.T))
			}
		}
	}
	for _, typ := range events.AllTypes {
		if written[typ] == 0 {
			t.Errorf("no %s in the histories: its conversion was not tested", typ)
		}
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCommandOfRefuses: events that no single command writes together, or that cannot be
// decided again as they were, are refused with invalid_argument.
func TestCommandOfRefuses(t *testing.T) {
	env := func(typ, kind, id, cmdID, cause string, data any) events.Envelope {
		raw, _ := json.Marshal(data)
		return events.Envelope{ID: "e-" + typ, Type: typ, Schema: 1, Tenant: "acme", Aggregate: events.AggregateRef{Kind: kind, ID: id},
			Actor: "admin", CommandID: cmdID, Cause: cause, Time: time.Now(), Data: raw}
	}
	assigned := env(events.RoleAssigned, events.KindPrincipal, "bob", "c1", "AssignRole", events.RoleAssignedV1{Role: "staff"})
	seat := env(events.SeatChanged, events.KindTenant, "acme", "c1", "AssignRole", events.SeatChangedV1{Principal: "bob", From: "disabled", To: "full"})
	preset, _ := aggregates.Preset("trackops")
	changed := preset
	changed.Policy.Permissions = append(changed.Policy.Permissions, "rocket.launch")
	created := func(p events.TenantCreatedV1) events.Envelope {
		return env(events.TenantCreated, events.KindTenant, "acme", "c2", "CreateTenant", p)
	}
	admin := env(events.PrincipalRegistered, events.KindPrincipal, "admin", "c2", "CreateTenant", events.PrincipalRegisteredV1{Principal: "admin", Kind: "staff", Email: "a@x.test"})
	other := assigned
	other.CommandID = "c9"
	unknown := assigned
	unknown.Type = "role_renamed"
	wrongKind := assigned
	wrongKind.Aggregate = events.AggregateRef{Kind: events.KindRecord, Type: "case", ID: "bob"}
	badCause := assigned
	badCause.Cause = "LaunchRocket"
	tests := []struct {
		name string
		evs  []events.Envelope
		want string
	}{
		{"none", nil, "no events"},
		{"two command ids", []events.Envelope{assigned, other}, "differ in command_id"},
		{"unknown type", []events.Envelope{unknown}, "unknown event type"},
		{"wrong aggregate", []events.Envelope{wrongKind}, "of a record aggregate"},
		{"unknown cause", []events.Envelope{badCause}, "is no command"},
		{"a companion of another command", []events.Envelope{assigned, seat}, "cannot have written"},
		{"an event twice", []events.Envelope{assigned, assigned}, "cannot have written"},
		{"a tenant without its administrator", []events.Envelope{created(preset)}, "needs its tenant_created"},
		{"a preset changed since", []events.Envelope{created(changed), admin}, "differs from today's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := aggregates.CommandOf(tc.evs)
			if aggregates.ErrorCode(err) != aggregates.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CommandOf = %v, %v; want invalid_argument naming %q", cmd, err, tc.want)
			}
		})
	}
	if cmd, err := aggregates.CommandOf([]events.Envelope{created(preset), admin}); err != nil || cmd.Name() != "CreateTenant" {
		t.Fatalf("the tenant with its administrator: %v, %v", cmd, err)
	}
}
