package replay

import (
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// invoiceViewers starts a stack with tenant acme (Trackops) and two staff who see invoices and
// no client: vi through a role giving invoice.view at all, fl (full_location) through its unit
// (the first of aggregatestest.Units) only.
func invoiceViewers(t *testing.T) (*stack, *projections.Engine) {
	s := startStack(t, Options{})
	engine := projections.NewEngine(s.db, s.proj, projections.EngineOptions{})
	d := s.d
	newRandomHistory(d, 1) // tenant acme (Trackops) and its units
	d.must("acme", "admin", &aggregates.DefineRole{Role: "invoices", PrincipalKinds: []string{aggregates.KindStaff},
		Grants: []events.Grant{{Permission: "invoice.view", Scope: aggregates.ScopeAll}}})
	d.staff("acme", "vi", aggregates.LevelFull, "invoices")
	d.must("acme", "admin", &aggregates.RegisterPrincipal{Principal: "fl", Kind: aggregates.KindStaff, Email: "fl@x.test",
		Units: []events.UnitRef{aggregatestest.Units[0]}})
	d.must("acme", "admin", &aggregates.AssignRole{Principal: "fl", Role: "staff"})
	d.must("acme", "admin", &aggregates.SetAccessLevel{Principal: "fl", Level: aggregates.LevelFullLocation})
	return s, engine
}

// TestEffectsReachViewersByIndex: a record change's effects (a dry run's, and the change
// feed's, which derives them the same way) are asked of the principals the indexes say may see
// the record before or after, not of every holder of its view permission. This history takes
// the paths the random ones seldom take, and every command's dry run is checked against the
// oracle (checkDryRuns):
//   - an invoice registered with a link to a case a limited staff member (lim) is assigned to:
//     lim gains it through the link rule (TO-4d), though nothing names lim on the invoice;
//   - the invoice moved to another client, its units unchanged: vi, who may view every invoice
//     and no client, loses the old client and gains the new one through the implication rule
//     (TO-4f), and so does fl (full_location), who sees the invoice through its unit only;
//   - the invoice removed: vi loses it and its client.
func TestEffectsReachViewersByIndex(t *testing.T) {
	s, engine := invoiceViewers(t)
	d := s.d
	east, west := aggregatestest.Units[0], aggregatestest.Units[1]
	r0, r1 := aggregatestest.Clients[0], aggregatestest.Clients[1]
	d.staff("acme", "lim", aggregates.LevelLimited, "staff")
	for _, c := range []string{r0, r1} {
		d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "client", ID: c, Units: []events.UnitRef{west}}})
	}
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: "c1", Units: []events.UnitRef{west}}})
	d.must("acme", "admin", &aggregates.AssignRecord{Type: "case", ID: "c1", Principal: "lim", Relation: "assignee"})

	tally := checkDryRuns(t, s, engine, []string{"admin", "lim", "vi", "fl"})
	invoice := events.RecordBody{Type: "invoice", ID: "i1", Client: r0, Units: []events.UnitRef{east},
		Links: []events.RecordRef{{Type: "case", ID: "c1"}}}
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: invoice})
	invoice.Client = r1
	d.must("acme", "admin", &aggregates.UpdateRecord{RecordBody: invoice})
	d.must("acme", "admin", &aggregates.RemoveRecord{Type: "invoice", ID: "i1"})
	// Registered: admin, lim, vi and fl gain it; moved: vi and fl (admin and lim see every
	// client anyway); removed: the four lose it.
	t.Logf("%d commands checked, %d changes of access", tally.checked, tally.changed)
	if tally.checked != 3 || tally.changed != 10 {
		t.Fatalf("%d commands checked, %d changes of access: want 3 and 10", tally.checked, tally.changed)
	}
}

// TestEffectsReachImpliedViewersOfAClient: a client record registered or removed changes the
// view of everyone who sees it through the implication rule (TO-4f: invoice.view on an
// invoice of the client gives client.view), whatever their view of the invoices, which do not
// change. vi (invoice.view at all) and fl (full_location, who sees the invoice through its
// unit only) see neither client otherwise; each command's dry run is checked against the
// oracle (checkDryRuns):
//   - client r0 removed while invoice i1 of r0 stays: vi and fl lose r0;
//   - invoice i2 registered for client r2, which does not exist yet, then r2 registered: vi
//     and fl gain r2 with the client's registration.
func TestEffectsReachImpliedViewersOfAClient(t *testing.T) {
	s, engine := invoiceViewers(t)
	d := s.d
	east, west := aggregatestest.Units[0], aggregatestest.Units[1]
	r0, r2 := aggregatestest.Clients[0], "r2"
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "client", ID: r0, Units: []events.UnitRef{west}}})
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "i1", Client: r0, Units: []events.UnitRef{east}}})
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "i2", Client: r2, Units: []events.UnitRef{east}}})

	tally := checkDryRuns(t, s, engine, []string{"admin", "vi", "fl"})
	d.must("acme", "admin", &aggregates.RemoveRecord{Type: "client", ID: r0})
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "client", ID: r2, Units: []events.UnitRef{west}}})
	t.Logf("%d commands checked, %d changes of access", tally.checked, tally.changed)
	if tally.checked != 2 || tally.changed < 4 {
		t.Fatalf("%d commands checked, %d changes of access: want 2, and 4 or more (vi and fl each lose r0 and gain r2)", tally.checked, tally.changed)
	}
}
