package aggregates

import (
	"fmt"
	"slices"

	"github.com/acl-es/acl/events"
)

// Facts is what the evaluator reads: one tenant's state and point lookups of its principals and
// records. The command service implements it over its aggregate cache, the projections over a
// Pebble snapshot, the oracle (Memory) over plain maps.
type Facts interface {
	Tenant() *Tenant
	// Principal returns the principal, or nil when it was never registered.
	Principal(id string) *Principal
	// Record returns the record, or nil when it was never registered. Principals and units are
	// records too (types user/employee/client_contact and location/team/area): implementations
	// answer those with PrincipalAsRecord and UnitAsRecord.
	Record(typ, id string) *Record
	// RecordsWithClient calls fn with every active record of type typ whose client is client, in
	// ascending id order, until fn returns false. The implication rule (TO-4f) enumerates the
	// invoices of a client with it. Principal record types answer the principals of that kind.
	RecordsWithClient(typ, client string, fn func(*Record) bool)
}

// Memory is one tenant's facts in plain maps, built by applying every event in stream order. It
// is the oracle of the differential tests and the state replayed for as_of.
type Memory struct {
	T          *Tenant
	Principals map[string]*Principal
	Records    map[events.RecordRef]*Record
}

// NewMemory returns the facts of a tenant before its first event.
func NewMemory(tenant string) *Memory {
	return &Memory{T: NewTenant(tenant), Principals: map[string]*Principal{}, Records: map[events.RecordRef]*Record{}}
}

func (m *Memory) Tenant() *Tenant                { return m.T }
func (m *Memory) Principal(id string) *Principal { return m.Principals[id] }

func (m *Memory) Record(typ, id string) *Record {
	switch {
	case IsPrincipalRecordType(typ):
		p := m.Principals[id]
		if p == nil || PrincipalRecordType(p.Kind) != typ {
			return nil
		}
		return PrincipalAsRecord(p)
	case IsUnitRecordType(typ):
		u := events.UnitRef{Kind: typ, ID: id}
		if ev, ok := m.T.Units[UnitKey(u)]; ok {
			return UnitAsRecord(u, ev)
		}
		return nil
	}
	return m.Records[events.RecordRef{Type: typ, ID: id}]
}

// RecordsWithClient implements Facts by brute force: the oracle need not be fast.
func (m *Memory) RecordsWithClient(typ, client string, fn func(*Record) bool) {
	var found []*Record
	if IsPrincipalRecordType(typ) {
		for _, p := range m.Principals {
			if PrincipalRecordType(p.Kind) == typ && p.Client == client && p.Active() {
				found = append(found, PrincipalAsRecord(p))
			}
		}
	} else {
		for k, r := range m.Records {
			if k.Type == typ && r.Client == client && r.Active() {
				found = append(found, r)
			}
		}
	}
	slices.SortFunc(found, func(a, b *Record) int { return strCmp(a.ID, b.ID) })
	for _, r := range found {
		if !fn(r) {
			return
		}
	}
}

// Apply folds one event of this tenant into the facts.
func (m *Memory) Apply(e events.Envelope) error {
	d, err := events.Decode(e)
	if err != nil {
		return err
	}
	switch e.Aggregate.Kind {
	case events.KindTenant:
		m.T.Apply(e, d)
	case events.KindPrincipal:
		p := m.Principals[e.Aggregate.ID]
		if p == nil {
			p = NewPrincipal(e.Aggregate.ID)
			m.Principals[e.Aggregate.ID] = p
		}
		p.Apply(e, d)
	case events.KindRecord:
		k := events.RecordRef{Type: e.Aggregate.Type, ID: e.Aggregate.ID}
		r := m.Records[k]
		if r == nil {
			r = NewRecord(k.Type, k.ID)
			m.Records[k] = r
		}
		r.Apply(e, d)
	default:
		return fmt.Errorf("aggregates: event %s of unknown aggregate kind %q", e.ID, e.Aggregate.Kind)
	}
	return nil
}

// World is the facts of every tenant.
type World map[string]*Memory

// Apply routes an event to its tenant's facts.
func (w World) Apply(e events.Envelope) error {
	m := w[e.Tenant]
	if m == nil {
		m = NewMemory(e.Tenant)
		w[e.Tenant] = m
	}
	return m.Apply(e)
}
