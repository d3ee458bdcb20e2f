package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/cockroachdb/pebble/v2"
)

// source is one index range whose keys list records of one type in id order: the id is the
// component right after prefix. A client contact's sources keep only entries whose value (the
// record's client) is its client; keyClient is set for the client index, whose value is empty
// and whose key already names the client.
type source struct {
	prefix    []byte
	filter    string
	keyClient string
}

// ranges reads the index ranges of one visible query with one iterator over the tenant.
type ranges struct {
	v   *view
	it  *pebble.Iterator
	it2 *pebble.Iterator // existence probes while it walks
}

func (v *view) newRanges() (*ranges, error) {
	lo := tenantPrefix(v.tenant)
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("projections: visible: %w", err)
	}
	return &ranges{v: v, it: it}, nil
}

func (r *ranges) close() {
	r.it.Close()
	if r.it2 != nil {
		r.it2.Close()
	}
}

// plan maps p's narrowed grants on records of typ to index ranges, as aggregates.Covers reads
// each scope: all -> every record of the type; client -> the client index; unit:K -> the unit
// index of each of p's units of kind K; own -> the owner index; assigned -> the assignee index,
// and for each link rule of typ and p's kind, the link index of every via record p is assigned to.
func (r *ranges) plan(p *aggregates.Principal, typ string, grants []aggregates.GrantUse) ([]source, error) {
	t, tn := r.v.t, r.v.tenant
	filter := ""
	if p.Kind == aggregates.KindClientContact {
		if p.Client == "" {
			return nil, nil // a client contact without a client is covered by nothing
		}
		filter = p.Client
	}
	var out []source
	add := func(s source) {
		for _, o := range out {
			if bytes.Equal(o.prefix, s.prefix) {
				return
			}
		}
		out = append(out, s)
	}
	for _, g := range grants {
		switch g.Scope {
		case aggregates.ScopeAll:
			add(source{prefix: key(nil, tn, string(tagAll), typ), filter: filter})
		case aggregates.ScopeClient:
			if p.Client != "" {
				add(source{prefix: key(nil, tn, string(tagClient), p.Client, typ), keyClient: p.Client})
			}
		case aggregates.ScopeOwn:
			add(source{prefix: key(nil, tn, string(tagOwner), p.ID, typ), filter: filter})
		case aggregates.ScopeAssigned:
			add(source{prefix: key(nil, tn, string(tagAssignee), p.ID, typ), filter: filter})
			for _, rule := range t.Policy.Links {
				if rule.Type != typ || !slices.Contains(rule.Kinds, p.Kind) {
					continue
				}
				vias, err := r.page(source{prefix: key(nil, tn, string(tagAssignee), p.ID, rule.Via)}, "", -1)
				if err != nil {
					return nil, err
				}
				for _, via := range vias {
					add(source{prefix: key(nil, tn, string(tagLink), rule.Via, via, typ), filter: filter})
				}
			}
		default:
			kind, ok := unitKind(g.Scope)
			if !ok {
				continue // a scope that covers nothing
			}
			for _, u := range p.Units {
				if u.Kind == kind {
					add(source{prefix: key(nil, tn, string(tagUnit), kind, u.ID, typ), filter: filter})
				}
			}
		}
	}
	return out, nil
}

// eachID visits the distinct ids of s's range from start on, ascending (a record with several
// relations has a key for each: it is visited once), until fn returns false; fn's id is valid
// until it returns. stopped reports that fn ended the walk (more ids may follow), not the
// range's end. page lists with it, and the change feed's walk reads it a chunk at a time
// (rangeIDs).
func (r *ranges) eachID(s source, start []byte, fn func(id []byte) bool) (stopped bool, err error) {
	var buf [64]byte // ids are short: the previous one is kept without allocating
	prev, have := buf[:0], false
	for ok := r.it.SeekGE(start); ok; ok = r.it.Next() {
		k := r.it.Key()
		if !bytes.HasPrefix(k, s.prefix) {
			break
		}
		if s.filter != "" && string(r.it.Value()) != s.filter {
			continue
		}
		id := k[len(s.prefix):]
		id = id[:bytes.IndexByte(id, sep)]
		if have && bytes.Equal(prev, id) {
			continue // one record, several relations
		}
		prev, have = append(prev[:0], id...), true
		if !fn(id) {
			stopped = true
			break
		}
	}
	if err := r.it.Error(); err != nil {
		return false, fmt.Errorf("projections: read index %q: %w", s.prefix, err)
	}
	return stopped, nil
}

// direct returns, for each range of p's grants of perm on typ, its first n ids after cursor.
func (r *ranges) direct(p *aggregates.Principal, typ, perm, cursor string, n int) ([][]string, error) {
	srcs, err := r.plan(p, typ, aggregates.NarrowedGrants(r.v.t, p, perm))
	if err != nil {
		return nil, err
	}
	pages := make([][]string, 0, len(srcs))
	for _, s := range srcs {
		ids, err := r.page(s, cursor, n)
		if err != nil {
			return nil, err
		}
		pages = append(pages, ids)
	}
	return pages, nil
}

// page returns the first n (n < 0: all) distinct ids of s after cursor.
func (r *ranges) page(s source, cursor string, n int) ([]string, error) {
	start := s.prefix
	if cursor != "" {
		// Every key of an id greater than cursor sorts at or after prefix+cursor+"\x01".
		start = append(append(bytes.Clone(s.prefix), cursor...), sep+1)
	}
	if n == 0 {
		return nil, nil
	}
	var out []string
	_, err := r.eachID(s, start, func(id []byte) bool {
		out = append(out, string(id))
		return n < 0 || len(out) < n
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
