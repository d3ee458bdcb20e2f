package main

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// recordType is the type of record i.
func (t *Tenant) recordType(i int) string {
	return t.prof.records[t.rslots[i%len(t.rslots)]].typ
}

// viewPermission is the permission that views record i.
func (t *Tenant) viewPermission(i int) string {
	return t.prof.records[t.rslots[i%len(t.rslots)]].viewPermission()
}

// Record returns record i (0 <= i < t.Records) as RegisterRecord carries it.
func (t *Tenant) Record(i int) events.RecordBody {
	r := rngFor(t.seed, t.ID, streamRecord, i)
	k := t.prof.records[t.rslots[i%len(t.rslots)]]
	b := events.RecordBody{Type: k.typ, ID: recordID(k.typ, i)}
	c := -1
	if k.client {
		c = r.IntN(t.Clients)
		b.Client = clientID(c)
	}
	for _, kind := range k.units {
		b.Units = append(b.Units, t.unit(kind, r.IntN(1<<30)))
	}
	if r.IntN(100) < k.owner {
		b.Owner = t.worker(r)
	}
	if k.assignees > 0 {
		for range 1 + r.IntN(k.assignees) {
			b.Assignees = append(b.Assignees, events.Assignee{Principal: t.worker(r), Relation: events.DefaultRelation})
		}
	}
	if r.IntN(100) < k.salesperson {
		b.Assignees = append(b.Assignees, events.Assignee{Principal: t.worker(r), Relation: "salesperson"})
	}
	if c >= 0 && r.IntN(100) < k.contact {
		if id, ok := t.contactOf(c, r.IntN(4)); ok {
			b.Assignees = append(b.Assignees, events.Assignee{Principal: id, Relation: events.DefaultRelation})
		}
	}
	if k.linkTo != "" {
		if j, ok := t.recordOfType(k.linkTo, r.IntN(1<<30)); ok {
			b.Links = []events.RecordRef{{Type: k.linkTo, ID: recordID(k.linkTo, j)}}
		}
	}
	return b
}

// unit returns the n-th unit (modulo their number) of a kind.
func (t *Tenant) unit(kind string, n int) events.UnitRef {
	switch kind {
	case aggregates.UnitLocation:
		return events.UnitRef{Kind: kind, ID: locationID(n % t.Locations)}
	case aggregates.UnitTeam:
		return events.UnitRef{Kind: kind, ID: teamID(n % t.Teams)}
	default:
		return events.UnitRef{Kind: kind, ID: areaID(n % t.Areas)}
	}
}

// recordOfType returns the index of a record of type typ chosen by n, or false when the tenant
// has none. Record types follow a fixed slot pattern, so this needs no search.
func (t *Tenant) recordOfType(typ string, n int) (int, bool) {
	var slots []int
	for s, k := range t.rslots {
		if t.prof.records[k].typ == typ {
			slots = append(slots, s)
		}
	}
	if len(slots) == 0 || t.Records == 0 {
		return 0, false
	}
	rounds := (t.Records + len(t.rslots) - 1) / len(t.rslots)
	for range 4 {
		i := (n%rounds)*len(t.rslots) + slots[(n/rounds)%len(slots)]
		if i < t.Records {
			return i, true
		}
		n = n/2 + 1
	}
	if slots[0] < t.Records {
		return slots[0], true
	}
	return 0, false
}

// ClientRecord returns client c: a record of type client (its own client), at a location.
func (t *Tenant) ClientRecord(c int) events.RecordBody {
	return events.RecordBody{Type: "client", ID: clientID(c),
		Units: []events.UnitRef{{Kind: aggregates.UnitLocation, ID: locationID(c % t.Locations)}}}
}
