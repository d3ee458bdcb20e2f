package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/cockroachdb/pebble/v2"
)

var _ aggregates.CoveredRecords = (*view)(nil)

// CoveredRecordsWithClient implements aggregates.CoveredRecords: the implication rule (TO-4f)
// asks it for the records of client that p's narrowed scopes may cover, so that a check of
// client.view reads the few records p may be allowed instead of every invoice of the client
// (at 10^6 records, a client has hundreds of records).
//
//   - A scope that covers every record of the client (all; client when it is p's client)
//     makes the first active record the answer: the client index is walked as
//     RecordsWithClient does, and the walk stops at once.
//   - Own and assigned read p's owner and assignee ranges (and the link ranges of the records it
//     is assigned to) as visible plans them, keeping the entries whose value, the record's
//     client, is client: few records.
//   - Unit scopes: a unit's range holds every record of the unit whatever its client, often
//     more than the client has; so the client's ids are walked from the client index (keys
//     only) and each is probed in the unit ranges of p's units of that kind, by iterators that
//     only move forward.
//
// Only the records so selected are read, in ascending id order: exactly the ones the scopes
// cover, which is what aggregates.Covers then confirms.
func (v *view) CoveredRecordsWithClient(p *aggregates.Principal, scopes []string, typ, client string, fn func(*aggregates.Record) bool) {
	if p.Kind == aggregates.KindClientContact && p.Client != client {
		return // Covers confines a client contact to its own client's records
	}
	if aggregates.IsPrincipalRecordType(typ) || aggregates.IsUnitRecordType(typ) {
		v.RecordsWithClient(typ, client, fn) // not in the owner and assignee ranges as records are
		return
	}
	var ranged, units []aggregates.GrantUse
	for _, s := range scopes {
		switch s {
		case aggregates.ScopeAll:
			v.RecordsWithClient(typ, client, fn)
			return
		case aggregates.ScopeClient:
			if p.Client == client {
				v.RecordsWithClient(typ, client, fn)
				return
			}
		case aggregates.ScopeOwn, aggregates.ScopeAssigned:
			ranged = append(ranged, aggregates.GrantUse{Scope: s})
		default:
			if _, ok := unitKind(s); ok {
				units = append(units, aggregates.GrantUse{Scope: s})
			}
			// any other scope covers nothing
		}
	}
	if len(ranged) == 0 && len(units) == 0 {
		return
	}
	r, err := v.newRanges()
	if err != nil {
		v.fail(err)
		return
	}
	defer r.close()
	ids, err := r.coveredIDs(p, typ, client, ranged)
	if err != nil {
		v.fail(err)
		return
	}
	var probes []source
	if len(units) > 0 {
		if probes, err = r.plan(p, typ, units); err != nil {
			v.fail(err)
			return
		}
	}
	yield := func(id string) bool {
		rec := v.Record(typ, id)
		if v.err != nil {
			return false
		}
		return !rec.Active() || rec.Client != client || fn(rec)
	}
	if len(probes) == 0 {
		for _, id := range ids {
			if !yield(id) {
				return
			}
		}
		return
	}
	// Walk the client's ids; each is a candidate when an own or assigned range listed it or one
	// of p's unit ranges holds it. Each unit range has its own iterator, bounded to the range and
	// only moved forward (ids ascend), so a probe is often answered by the key it stands on.
	its := make([]*unitProbe, len(probes))
	for i, s := range probes {
		it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: prefixEnd(s.prefix)})
		if err != nil {
			v.fail(fmt.Errorf("projections: probe: %w", err))
			return
		}
		defer it.Close()
		its[i] = &unitProbe{it: it, prefix: s.prefix}
	}
	prefix := key(nil, v.tenant, string(tagClient), client, typ)
	for ok := r.it.SeekGE(prefix); ok && bytes.HasPrefix(r.it.Key(), prefix); ok = r.it.Next() {
		id, _, _ := bytes.Cut(r.it.Key()[len(prefix):], []byte{sep})
		_, found := slices.BinarySearch(ids, string(id))
		for _, u := range its {
			if found {
				break
			}
			if found, err = u.has(id); err != nil {
				v.fail(err)
				return
			}
		}
		if found && !yield(string(id)) {
			return
		}
	}
	if err := r.it.Error(); err != nil {
		v.fail(fmt.Errorf("projections: read index %q: %w", prefix, err))
	}
}

// unitProbe answers whether ids, asked in ascending order, are in one unit range.
type unitProbe struct {
	it     *pebble.Iterator
	prefix []byte
	cur    []byte // the id the iterator stands on; nil before the first seek
	done   bool   // the iterator ran off the range
	buf    []byte
}

func (u *unitProbe) has(id []byte) (bool, error) {
	if u.done {
		return false, nil
	}
	if u.cur != nil && bytes.Compare(u.cur, id) >= 0 {
		return bytes.Equal(u.cur, id), nil
	}
	u.buf = append(append(append(u.buf[:0], u.prefix...), id...), sep)
	if !u.it.SeekGE(u.buf) {
		if err := u.it.Error(); err != nil {
			return false, fmt.Errorf("projections: probe %q: %w", u.buf, err)
		}
		u.done = true
		return false, nil
	}
	cur, _, _ := bytes.Cut(u.it.Key()[len(u.prefix):], []byte{sep})
	u.cur = append(u.cur[:0], cur...)
	return bytes.Equal(u.cur, id), nil
}

// coveredIDs returns, ascending and unique, the ids of the records of client in the owner,
// assignee and link ranges that visible plans for p's grants on typ.
func (r *ranges) coveredIDs(p *aggregates.Principal, typ, client string, grants []aggregates.GrantUse) ([]string, error) {
	if len(grants) == 0 {
		return nil, nil
	}
	srcs, err := r.plan(p, typ, grants)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range srcs {
		for ok := r.it.SeekGE(s.prefix); ok && bytes.HasPrefix(r.it.Key(), s.prefix); ok = r.it.Next() {
			if string(r.it.Value()) != client {
				continue
			}
			id, _, _ := bytes.Cut(r.it.Key()[len(s.prefix):], []byte{sep})
			ids = append(ids, string(id))
		}
		if err := r.it.Error(); err != nil {
			return nil, fmt.Errorf("projections: read index %q: %w", s.prefix, err)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
