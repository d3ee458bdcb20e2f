package main

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Query targets are drawn before a run, from the query stream of the seed, so the measured loop
// does no generating and two runs ask the same questions.

// checkTarget is one check question.
type checkTarget struct {
	tenant string
	q      projections.CheckQuery
	kind   int // index in checkKinds
}

// checkKinds name the kinds of check questions, for latencies by kind.
var checkKinds = []string{"record_view", "record_edit", "no_record", "client_view"}

// checkTargets draws n check questions over all tenants:
//
//	70% <type>.view on a record (allowed or not, by the principal's role, level and relations)
//	10% <type>.edit on a record
//	10% session.login (no record)
//	10% client.view on a client (the implication rule where the preset has one)
func (d *Dataset) checkTargets(n int) []checkTarget {
	out := make([]checkTarget, n)
	for i := range out {
		t := d.Tenants[i%len(d.Tenants)]
		r := rngFor(d.Seed, t.ID, streamQuery, i)
		p := principalID(r.IntN(t.Principals))
		q := projections.CheckQuery{Principal: p}
		switch k := r.IntN(100); {
		case k < 80 && t.Records > 0:
			idx := r.IntN(t.Records)
			typ := t.recordType(idx)
			q.Permission = t.viewPermission(idx)
			if k >= 70 {
				q.Permission = typ + ".edit"
				out[i].kind = 1
			}
			q.Record = &events.RecordRef{Type: typ, ID: recordID(typ, idx)}
		case k < 90:
			q.Permission = aggregates.SessionLogin
			out[i].kind = 2
		default:
			q.Permission = "client.view"
			q.Record = &events.RecordRef{Type: "client", ID: clientID(r.IntN(t.Clients))}
			out[i].kind = 3
		}
		out[i].tenant, out[i].q = t.ID, q
	}
	return out
}

// principalsOf returns up to n principals of t (in index order from a seeded start) whose level
// is level and who hold the profile's probe role: they see the probe type at scope all (full)
// or only what they are assigned to (limited).
func (t *Tenant) principalsOf(level string, n int) []string {
	var out []string
	start := int(t.seed % uint64(max(t.Principals, 1)))
	for k := 0; k < t.Principals && len(out) < n; k++ {
		j := (start + k) % t.Principals
		p := t.Principal(j)
		if p.Level == level && p.Role == t.prof.probe.role && p.Deny != t.prof.probe.perm {
			out = append(out, p.ID)
		}
	}
	return out
}

// recordTarget is a record of a tenant with the permission to ask about it.
type recordTarget struct {
	tenant string
	rec    events.RecordRef
	perm   string
}

// recordTargets draws n records over all tenants, each with its type's view permission.
func (d *Dataset) recordTargets(n int, salt int) []recordTarget {
	var out []recordTarget
	for i := range n {
		t := d.Tenants[i%len(d.Tenants)]
		if t.Records == 0 {
			continue
		}
		r := rngFor(d.Seed, t.ID, streamQuery, salt<<32|i)
		idx := r.IntN(t.Records)
		typ := t.recordType(idx)
		out = append(out, recordTarget{tenant: t.ID, rec: events.RecordRef{Type: typ, ID: recordID(typ, idx)}, perm: t.viewPermission(idx)})
	}
	return out
}

// probeRecords draws n records of the probe type of t.
func (t *Tenant) probeRecords(n int, salt int) []events.RecordRef {
	idx := t.probeIndexes(n, salt)
	out := make([]events.RecordRef, len(idx))
	for k, i := range idx {
		out[k] = events.RecordRef{Type: t.prof.probe.typ, ID: recordID(t.prof.probe.typ, i)}
	}
	return out
}

// probeIndexes draws the indexes of n records of the probe type of t (probeRecords' records).
func (t *Tenant) probeIndexes(n int, salt int) []int {
	var out []int
	for i := range n {
		r := rngFor(t.seed, t.ID, streamQuery, salt<<32|i)
		if idx, ok := t.recordOfType(t.prof.probe.typ, r.IntN(1<<30)); ok {
			out = append(out, idx)
		}
	}
	return out
}
