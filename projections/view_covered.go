package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
)

var _ aggregates.CoveredRecords = (*view)(nil)

// CoveredRecordsWithClient implements aggregates.CoveredRecords: the implication rule (TO-4f)
// asks it for the records of client that p's narrowed scopes may cover, so that a check of
// client.view reads the few records p owns or is assigned to instead of every invoice of the
// client (at 10^6 records, a client has hundreds).
//
// A scope that covers every record of the client (all; client when it is p's client) makes the
// first active record the answer: the client index is walked as RecordsWithClient does, and the
// walk stops at once. A unit scope falls back to that walk too: its index ranges hold every
// record of the unit whatever its client, often more keys than the client has records. Own and
// assigned scopes read p's owner and assignee ranges (and the link ranges of the cases it is
// assigned to) as visible plans them, keeping the entries whose value, the record's client, is
// client: the exact set those scopes cover, in ascending id order.
func (v *view) CoveredRecordsWithClient(p *aggregates.Principal, scopes []string, typ, client string, fn func(*aggregates.Record) bool) {
	if p.Kind == aggregates.KindClientContact && p.Client != client {
		return // Covers confines a client contact to its own client's records
	}
	if aggregates.IsPrincipalRecordType(typ) || aggregates.IsUnitRecordType(typ) {
		v.RecordsWithClient(typ, client, fn) // not in the owner and assignee ranges as records are
		return
	}
	var narrow []aggregates.GrantUse
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
			narrow = append(narrow, aggregates.GrantUse{Scope: s})
		default:
			if _, ok := unitKind(s); ok {
				v.RecordsWithClient(typ, client, fn)
				return
			}
			// any other scope covers nothing
		}
	}
	if len(narrow) == 0 {
		return
	}
	r, err := v.newRanges()
	if err != nil {
		v.fail(err)
		return
	}
	defer r.close()
	srcs, err := r.plan(p, typ, narrow)
	if err != nil {
		v.fail(err)
		return
	}
	var ids []string
	for _, s := range srcs {
		for ok := r.it.SeekGE(s.prefix); ok; ok = r.it.Next() {
			k := r.it.Key()
			if !bytes.HasPrefix(k, s.prefix) {
				break
			}
			if string(r.it.Value()) != client {
				continue
			}
			id, _, _ := bytes.Cut(k[len(s.prefix):], []byte{sep})
			ids = append(ids, string(id))
		}
		if err := r.it.Error(); err != nil {
			v.fail(fmt.Errorf("projections: read index %q: %w", s.prefix, err))
			return
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		rec := v.Record(typ, id)
		if v.err != nil {
			return
		}
		if rec.Active() && rec.Client == client && !fn(rec) {
			return
		}
	}
}
