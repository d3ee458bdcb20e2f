package main

import (
	"fmt"

	"github.com/acl-es/acl/aggregates"
)

// A profile is what a realistic tenant of one preset looks like: which kinds of principals it
// has and in what proportion, which roles they hold, and which records it keeps with which
// fields. The proportions are the generator's assumptions (the seeds give none); they are chosen
// so that every scope of the preset is exercised: unit scopes, client scopes, assigned scopes
// through links, own scopes, and every access level.
type profile struct {
	preset   string
	features []string // the subscription, so that feature-bound roles grant something
	// kinds: principal j has the kind of slot j % len(slots); a fixed pattern rather than a
	// draw, so that "a client contact of client c" can be found without a search.
	kinds []kindMix
	// records: record i has the type of slot i % 100 (same reason: "a case to link to").
	records []recordKind
	// grant and deny: permissions some principals get directly or are denied.
	grant, deny string
	// probe is what read-your-writes and the visible workload ask about: a role whose holders
	// see the type at scope all (narrowed to assigned at limited), and its view permission.
	probe probe
}

// kindMix is one kind of principal: its share (slots out of 20) and its roles with weights.
type kindMix struct {
	kind  string
	slots int
	roles []weighted
	// levels with weights: full, full_location, limited, disabled.
	levels []weighted
}

type weighted struct {
	v string
	w int
}

// recordKind describes the records of one type.
type recordKind struct {
	typ         string
	slots       int      // share out of 100
	client      bool     // has a client
	units       []string // unit kinds it belongs to (one unit of each)
	owner       int      // percent with an owner
	assignees   int      // 0..assignees staff assignees, relation "assignee"
	salesperson int      // percent with a salesperson assignee too
	contact     int      // percent with a client contact of its client as assignee
	linkTo      string   // type of a record it links to ("" none)
	view        string   // the permission that views it, when not <type>.view
}

// viewPermission is the permission the query workloads ask about a record of this kind.
func (k recordKind) viewPermission() string {
	if k.view != "" {
		return k.view
	}
	return k.typ + ".view"
}

type probe struct {
	role string
	typ  string
	perm string
}

// Level mixes. Client contacts are rarely full-location (they have no location).
var (
	staffLevels = []weighted{{aggregates.LevelFull, 35}, {aggregates.LevelFullLocation, 20},
		{aggregates.LevelLimited, 35}, {aggregates.LevelDisabled, 10}}
	contactLevels = []weighted{{aggregates.LevelFull, 60}, {aggregates.LevelLimited, 30}, {aggregates.LevelDisabled, 10}}
)

var profiles = map[string]*profile{
	"trackops": {
		preset: "trackops",
		kinds: []kindMix{
			{kind: aggregates.KindStaff, slots: 16, roles: []weighted{{"staff", 95}, {"administrator", 5}}, levels: staffLevels},
			{kind: aggregates.KindClientContact, slots: 4, roles: []weighted{{"client_contact", 1}}, levels: contactLevels},
		},
		records: []recordKind{
			{typ: "case", slots: 35, client: true, units: []string{aggregates.UnitLocation}, owner: 50, assignees: 2, contact: 15},
			{typ: "invoice", slots: 30, client: true, units: []string{aggregates.UnitLocation}, assignees: 1, salesperson: 30, contact: 20, linkTo: "case"},
			{typ: "expense", slots: 20, units: []string{aggregates.UnitLocation}, owner: 80, assignees: 1},
			{typ: "review", slots: 15, client: true, units: []string{aggregates.UnitLocation}, assignees: 1},
		},
		grant: "report.view", deny: "invoice.view",
		probe: probe{role: "staff", typ: "case", perm: "case.view"},
	},
	// compare is the shape the comparison with SpiceDB and OpenFGA was measured on (issue 13):
	// trackops staff only, 10 % full and the rest limited; cases with 1 to 3 assignees; invoices
	// each linked to a case, 20 % with a salesperson. Run it with --presets compare --records
	// 2e5 --principals 1e4 (10^5 cases and 10^5 invoices).
	"compare": {
		preset: "trackops",
		kinds: []kindMix{
			{kind: aggregates.KindStaff, slots: 20, roles: []weighted{{"staff", 1}},
				levels: []weighted{{aggregates.LevelFull, 10}, {aggregates.LevelLimited, 90}}},
		},
		records: []recordKind{
			{typ: "case", slots: 50, client: true, units: []string{aggregates.UnitLocation}, assignees: 3},
			{typ: "invoice", slots: 50, client: true, units: []string{aggregates.UnitLocation}, salesperson: 20, linkTo: "case"},
		},
		grant: "report.view", deny: "expense.view",
		probe: probe{role: "staff", typ: "invoice", perm: "invoice.view"},
	},
	"reconpro": {
		preset:   "reconpro",
		features: []string{aggregates.FeatureTechnicianUsers, aggregates.FeatureMonitor},
		kinds: []kindMix{
			{kind: aggregates.KindStaff, slots: 8, levels: staffLevels, roles: []weighted{
				{"accountant", 15}, {"work_manager", 20}, {"work_manager_read_only", 10}, {"technician", 20},
				{"team_work_manager", 10}, {"area_work_manager", 5}, {"team_administrator", 10}, {"area_administrator", 5},
				{"administrator", 5}}},
			{kind: aggregates.KindClientContact, slots: 4, levels: contactLevels, roles: []weighted{
				{"client", 30}, {"client_accountant", 20}, {"client_inspector", 20}, {"sales_person", 15},
				{"client_monitor_manager", 15}}},
			{kind: aggregates.KindEmployee, slots: 8, levels: staffLevels, roles: []weighted{
				{"employee", 70}, {"inspector", 20}, {"manager", 10}}},
		},
		records: []recordKind{
			{typ: "service_request", slots: 20, client: true, units: []string{aggregates.UnitTeam, aggregates.UnitArea}, assignees: 1, contact: 10},
			{typ: "inspection", slots: 20, client: true, units: []string{aggregates.UnitTeam, aggregates.UnitArea}, assignees: 2},
			{typ: "work_order", slots: 25, client: true, units: []string{aggregates.UnitTeam, aggregates.UnitArea}, owner: 30, assignees: 2, salesperson: 10},
			{typ: "invoice", slots: 10, client: true, units: []string{aggregates.UnitTeam, aggregates.UnitArea}, assignees: 1, linkTo: "work_order"},
			{typ: "repair_order", slots: 15, units: []string{aggregates.UnitTeam}, assignees: 1},
			{typ: "timesheet", slots: 10, units: []string{aggregates.UnitTeam}, owner: 100},
		},
		grant: "report.view", deny: "invoice.view",
		probe: probe{role: "work_manager", typ: "work_order", perm: "work_order.view"},
	},
	"probuild": {
		preset: "probuild",
		kinds: []kindMix{
			{kind: aggregates.KindStaff, slots: 12, levels: staffLevels, roles: []weighted{{"admin", 3}, {"manager", 20}, {"worker", 77}}},
			{kind: aggregates.KindEmployee, slots: 8, levels: staffLevels, roles: []weighted{{"worker", 60}, {"subcontractor", 40}}},
		},
		records: []recordKind{
			{typ: "project", slots: 15, client: true, units: []string{aggregates.UnitLocation}, assignees: 4},
			{typ: "project_post", slots: 20, owner: 100, linkTo: "project", view: "project_post.edit"}, // posts have no view row
			{typ: "timesheet", slots: 30, units: []string{aggregates.UnitLocation}, owner: 100},
			{typ: "invoice", slots: 15, client: true, assignees: 1},
			{typ: "item", slots: 10},
			{typ: "contract", slots: 10, client: true, owner: 50},
		},
		grant: "invoice.view", deny: "chat.send",
		probe: probe{role: "worker", typ: "project", perm: "project.view"},
	},
}

// profileFor returns the profile of a preset, checking that its slots add up.
func profileFor(preset string) (*profile, error) {
	p, ok := profiles[preset]
	if !ok {
		return nil, fmt.Errorf("no generator profile for preset %q (trackops, reconpro, probuild)", preset)
	}
	return p, nil
}

// kindSlots and recordSlots expand the shares into lookup tables.
func (p *profile) kindSlots() []int {
	var out []int
	for k, m := range p.kinds {
		for range m.slots {
			out = append(out, k)
		}
	}
	return out
}

func (p *profile) recordSlots() []int {
	var out []int
	for k, r := range p.records {
		for range r.slots {
			out = append(out, k)
		}
	}
	return out
}

// pick draws a value by weight.
func pick(r interface{ IntN(int) int }, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := r.IntN(total)
	for _, w := range ws {
		if n < w.w {
			return w.v
		}
		n -= w.w
	}
	return ws[len(ws)-1].v
}
