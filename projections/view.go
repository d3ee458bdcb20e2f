package projections

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
)

// view is one query's look at one tenant: a Pebble snapshot (or an as_of overlay), the sequence
// it reflects, and the tenant's decoded state. It implements aggregates.Facts, so aggregates.Check runs on it as on
// the oracle. Facts methods cannot fail; a read error is kept in err and the query answers it.
type view struct {
	e      *Engine
	snap   reader
	own    io.Closer       // closes snap when the view is closed; nil when another owns it
	shared *sharedSnapshot // snap's owner when shared with other queries (engine_snapshot.go)
	tenant string
	tid    string // tenant, as the cached tenant's ID string when equal (one copy in every cache entry)
	t      *aggregates.Tenant
	seq    uint64
	mods   *modLog // set when the snapshot holds exactly the published state
	err    error
	kbuf   []byte
}

var _ aggregates.Facts = (*view)(nil)

// reader is what a view reads: a snapshot of the live DB (*pebble.Snapshot), or an as_of
// state's overlay (*pebble.Batch, indexed: the writes of the events replayed after a
// checkpoint, read through to the checkpoint opened read-only; see Overlay).
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// Tenant implements aggregates.Facts.
func (v *view) Tenant() *aggregates.Tenant { return v.t }

// Principal implements aggregates.Facts.
func (v *view) Principal(id string) *aggregates.Principal {
	v.kbuf = principalKey(v.kbuf[:0], v.tenant, id)
	s, err := v.state(v.kbuf, func(s any) bool {
		p, ok := s.(*aggregates.Principal)
		return ok && p.ID == id
	}, func(b []byte) (any, error) { return decodePrincipal(b) })
	if err != nil || s == nil {
		v.fail(err)
		return nil
	}
	return s.(*aggregates.Principal)
}

// Record implements aggregates.Facts: principals and units answer as the records they are.
func (v *view) Record(typ, id string) *aggregates.Record {
	switch {
	case aggregates.IsPrincipalRecordType(typ):
		p := v.Principal(id)
		if p == nil || aggregates.PrincipalRecordType(p.Kind) != typ {
			return nil
		}
		return aggregates.PrincipalAsRecord(p)
	case aggregates.IsUnitRecordType(typ):
		u := events.UnitRef{Kind: typ, ID: id}
		if ev, ok := v.t.Units[aggregates.UnitKey(u)]; ok {
			return aggregates.UnitAsRecord(u, ev)
		}
		return nil
	}
	v.kbuf = recordKey(v.kbuf[:0], v.tenant, typ, id)
	s, err := v.state(v.kbuf, func(s any) bool {
		r, ok := s.(*aggregates.Record)
		return ok && r.ID == id && r.Type == typ
	}, func(b []byte) (any, error) { return decodeRecord(b) })
	if err != nil || s == nil {
		v.fail(err)
		return nil
	}
	return s.(*aggregates.Record)
}

// RecordsWithClient implements aggregates.Facts over the client index.
func (v *view) RecordsWithClient(typ, client string, fn func(*aggregates.Record) bool) {
	prefix := key(nil, v.tenant, string(tagClient), client, typ)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		v.fail(fmt.Errorf("projections: client index: %w", err))
		return
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id, _, _ := bytes.Cut(it.Key()[len(prefix):], []byte{sep})
		r := v.Record(typ, string(id))
		if r.Active() && !fn(r) {
			return
		}
	}
	if err := it.Error(); err != nil {
		v.fail(fmt.Errorf("projections: client index: %w", err))
	}
}

// state returns the decoded state at k (nil when absent), from the engine's cache when the
// snapshot holds the state it was decoded from: known unchanged since by the projector's
// modification log (no read at all), or found by reading the sequence stored in front of it.
// same tells whether a cached state is k's (same tenant, type and id): the cache is keyed by
// k's hash.
func (v *view) state(k []byte, same func(any) bool, dec func([]byte) (any, error)) (any, error) {
	h := keyHash(k)
	cached, ok := v.e.decoded.entry(h)
	ok = ok && cached.tenant == v.tid && same(cached.v)
	// The log says whether k changed after validAt, so the shortcut holds only for a state valid
	// at or before this view's sequence: one cached by a newer view may be newer than the
	// snapshot (a long query still on an older snapshot).
	if ok && v.mods != nil && cached.validAt <= v.seq && v.mods.unchangedSince(h, cached.validAt) {
		return cached.v, nil
	}
	val, closer, err := v.snap.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("projections: read %q: %w", k, err)
	}
	defer closer.Close()
	return v.stateOf(h, cached, ok, val, dec)
}

// stateOf decodes val, the stored value of the key of hash h, or answers the cached state
// when it is that very state (ok: cached is the key's entry).
func (v *view) stateOf(h uint64, cached decodedEntry, ok bool, val []byte, dec func([]byte) (any, error)) (any, error) {
	seq, _, err := decodeSeq(val)
	if err != nil {
		return nil, err
	}
	if ok && cached.seq == seq {
		if cached.validAt < v.seq {
			cached.validAt = v.seq
			v.e.decoded.put(h, cached)
		}
		return cached.v, nil
	}
	s, err := dec(val)
	if err != nil {
		return nil, err
	}
	v.e.decoded.put(h, decodedEntry{seq: seq, v: s, validAt: v.seq, tenant: v.tid})
	return s, nil
}

// principals calls fn with each principal of ids (ascending) that exists in the snapshot,
// read with one iterator moving forward: for many principals, several times cheaper than a
// point read each.
func (v *view) principals(ids []string, fn func(p *aggregates.Principal)) error {
	lo := key(nil, v.tenant, string(tagPrincipal))
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("projections: principals: %w", err)
	}
	defer it.Close()
	dec := func(b []byte) (any, error) { return decodePrincipal(b) }
	var k []byte
	for _, id := range ids {
		k = principalKey(k[:0], v.tenant, id)
		if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
			continue
		}
		h := keyHash(k)
		cached, ok := v.e.decoded.entry(h)
		if ok {
			p, same := cached.v.(*aggregates.Principal)
			ok = same && cached.tenant == v.tid && p.ID == id
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("projections: read %q: %w", k, err)
		}
		s, err := v.stateOf(h, cached, ok, val, dec)
		if err != nil {
			return err
		}
		fn(s.(*aggregates.Principal))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("projections: principals: %w", err)
	}
	return nil
}

func (v *view) fail(err error) {
	if err != nil && v.err == nil {
		v.err = err
	}
}

// close releases the snapshot and returns v to the pool: the caller must not use v after.
func (v *view) close() {
	if v.shared != nil {
		v.shared.release()
	} else if v.own != nil {
		v.own.Close()
	}
	*v = view{kbuf: v.kbuf[:0]}
	views.Put(v)
}

// views recycles views and their key buffers: opening a view was 5% of a check's CPU at 10^6
// records, half of it allocating them.
var views = sync.Pool{New: func() any { return &view{kbuf: make([]byte, 0, 128)} }}
