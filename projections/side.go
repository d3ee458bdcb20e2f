package projections

import (
	"maps"
	"slices"
	"strings"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// side is one side of a change, for effects (effects.go): a view of the read model (its
// snapshot; its tenant is this side's) with some principals and records replaced by their
// states before or after the change. It implements aggregates.Facts, so aggregates.Check, the
// one evaluator, decides on it exactly as on the read model. It does not implement
// aggregates.CoveredRecords: the replaced records are not in the snapshot's indexes, so the
// implication rule enumerates a client's records through RecordsWithClient, which knows them.
type side struct {
	v    *view
	ps   map[string]*aggregates.Principal
	rs   map[events.RecordRef]*aggregates.Record
	read *snapshotReads // shared by the sides over v's snapshot
	maps *effectMaps    // the feed's: Visible maps to reuse (nil: new ones)
}

// snapshotReads keeps the principals and records a change's sides read from their snapshot:
// every candidate is decided on both sides, by several checks each, and each would read the
// same states again.
type snapshotReads struct {
	ps map[string]*aggregates.Principal
	rs map[events.RecordRef]*aggregates.Record
}

var _ aggregates.Facts = (*side)(nil)

func newSide(v *view) *side {
	return &side{v: v, ps: map[string]*aggregates.Principal{}, rs: map[events.RecordRef]*aggregates.Record{},
		read: &snapshotReads{ps: map[string]*aggregates.Principal{}, rs: map[events.RecordRef]*aggregates.Record{}}}
}

// prefetch reads the principals of ids (ascending) that the side does not replace, with one
// iterator, into the side's reads.
func (s *side) prefetch(ids []string) error {
	var want []string
	for _, id := range ids {
		if _, ok := s.ps[id]; !ok {
			if _, ok := s.read.ps[id]; !ok {
				want = append(want, id)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	err := s.v.principals(want, func(p *aggregates.Principal) { s.read.ps[p.ID] = p })
	for _, id := range want {
		if _, ok := s.read.ps[id]; !ok {
			s.read.ps[id] = nil // absent from the snapshot
		}
	}
	return err
}

// Tenant implements aggregates.Facts.
func (s *side) Tenant() *aggregates.Tenant { return s.v.t }

// Principal implements aggregates.Facts.
func (s *side) Principal(id string) *aggregates.Principal {
	if p, ok := s.ps[id]; ok {
		return p
	}
	if p, ok := s.read.ps[id]; ok {
		return p
	}
	p := s.v.Principal(id)
	if s.v.err == nil {
		s.read.ps[id] = p
	}
	return p
}

// Record implements aggregates.Facts.
func (s *side) Record(typ, id string) *aggregates.Record {
	switch {
	case aggregates.IsPrincipalRecordType(typ):
		p := s.Principal(id)
		if p == nil || aggregates.PrincipalRecordType(p.Kind) != typ {
			return nil
		}
		return aggregates.PrincipalAsRecord(p)
	case aggregates.IsUnitRecordType(typ):
		u := events.UnitRef{Kind: typ, ID: id}
		if ev, ok := s.v.t.Units[aggregates.UnitKey(u)]; ok {
			return aggregates.UnitAsRecord(u, ev)
		}
		return nil
	}
	ref := events.RecordRef{Type: typ, ID: id}
	if r, ok := s.rs[ref]; ok {
		return r
	}
	if r, ok := s.read.rs[ref]; ok {
		return r
	}
	r := s.v.Record(typ, id)
	if s.v.err == nil {
		s.read.rs[ref] = r
	}
	return r
}

// replaced reports whether the side holds its own state of record typ/id.
func (s *side) replaced(typ, id string) bool {
	if aggregates.IsPrincipalRecordType(typ) {
		_, ok := s.ps[id]
		return ok
	}
	_, ok := s.rs[events.RecordRef{Type: typ, ID: id}]
	return ok
}

// RecordsWithClient implements aggregates.Facts: the snapshot's client index without the
// replaced records, and the replaced ones that have that client now.
func (s *side) RecordsWithClient(typ, client string, fn func(*aggregates.Record) bool) {
	var found []*aggregates.Record
	s.v.RecordsWithClient(typ, client, func(r *aggregates.Record) bool {
		if !s.replaced(typ, r.ID) {
			found = append(found, r)
		}
		return true
	})
	keep := func(r *aggregates.Record) {
		if r.Active() && r.Type == typ && r.Client == client {
			found = append(found, r)
		}
	}
	if aggregates.IsPrincipalRecordType(typ) {
		for _, p := range s.ps {
			if aggregates.PrincipalRecordType(p.Kind) == typ {
				keep(aggregates.PrincipalAsRecord(p))
			}
		}
	} else {
		for _, r := range s.rs {
			keep(r)
		}
	}
	slices.SortFunc(found, func(a, b *aggregates.Record) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range found {
		if !fn(r) {
			return
		}
	}
}

// allowed is Check of typ.view on record typ/id; anything Check refuses to answer (a permission
// the policy lacks, a principal or record that does not exist) is not allowed.
func (s *side) allowed(principal, typ, id string) bool {
	// What Check refuses to answer is not asked: its error is a sentence built to be read (a
	// registration asks ~1,000 principals about a record the side before it lacks).
	perm := typ + ".view"
	if p := s.Principal(principal); p == nil || !p.Exists || !s.Record(typ, id).Active() || !s.v.t.KnowsPermission(perm) {
		return false
	}
	ok, err := aggregates.Allowed(s, principal, perm, &events.RecordRef{Type: typ, ID: id})
	return err == nil && ok
}

// allIDs is the page size that reads a whole range.
const allIDs = 1 << 62

// withTenant returns a view of the same snapshot that answers tenant t. It shares v's
// snapshot and is never closed itself.
func (v *view) withTenant(t *aggregates.Tenant) *view {
	return &view{e: v.e, snap: v.snap, tenant: v.tenant, tid: v.tid, t: t, seq: v.seq}
}

// next returns the side after e: s with the state of e's aggregate replaced by a copy with e
// applied (s itself and the states it shares are not changed).
func (s *side) next(e events.Envelope, d events.Data) (*side, error) {
	n := &side{v: s.v, ps: maps.Clone(s.ps), rs: maps.Clone(s.rs), read: s.read, maps: s.maps}
	switch e.Aggregate.Kind {
	case events.KindTenant:
		t, err := cloneTenant(s.v.t)
		if err != nil {
			return nil, err
		}
		t.Apply(e, d)
		n.v = s.v.withTenant(t)
	case events.KindPrincipal:
		p := aggregates.NewPrincipal(e.Aggregate.ID)
		if old := s.Principal(e.Aggregate.ID); old != nil {
			var err error
			if p, err = clonePrincipal(old); err != nil {
				return nil, err
			}
		}
		p.Apply(e, d)
		n.ps[p.ID] = p
	case events.KindRecord:
		ref := events.RecordRef{Type: e.Aggregate.Type, ID: e.Aggregate.ID}
		if shadowed(ref.Type) {
			return n, nil // principals and units answer those types; the record changes no access
		}
		r := aggregates.NewRecord(ref.Type, ref.ID)
		if old := s.Record(ref.Type, ref.ID); old != nil {
			var err error
			if r, err = cloneRecord(old); err != nil {
				return nil, err
			}
		}
		r.Apply(e, d)
		n.rs[ref] = r
	}
	return n, s.v.err
}

// The states a view reads may be shared (the decoded cache): copies are made through the
// stored encoding before a change is applied to them.

func cloneTenant(t *aggregates.Tenant) (*aggregates.Tenant, error) {
	v, err := encodeTenant(t)
	if err != nil {
		return nil, err
	}
	c, err := decodeTenant(v)
	if err != nil {
		return nil, err
	}
	c.SeatHolders = maps.Clone(t.SeatHolders)
	if c.SeatHolders == nil {
		c.SeatHolders = map[string]string{}
	}
	return c, nil
}

func clonePrincipal(p *aggregates.Principal) (*aggregates.Principal, error) {
	v, _ := encodePrincipal(p)
	return decodePrincipal(v) // it remembers no commands
}

func cloneRecord(r *aggregates.Record) (*aggregates.Record, error) {
	v, _ := encodeRecord(r)
	return decodeRecord(v) // it remembers no commands
}
