package projections

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/acl-es/acl/aggregates"
)

// CountMemo keeps, for one tenant at one moment (the caller keeps it for one engine and one
// sequence), the size of each index range visible reads and the clients each implies, so
// that counting what many principals may view reads each shared range once: at 10^6 records
// the all range of a type holds ~350,000 ids, and every principal at level full reads it.
// Safe for concurrent use.
type CountMemo struct {
	mu      sync.Mutex
	counts  map[string]int
	clients map[string][]string
}

// NewCountMemo returns an empty memo.
func NewCountMemo() *CountMemo {
	return &CountMemo{counts: map[string]int{}, clients: map[string][]string{}}
}

func (s source) memoKey() string { return string(s.prefix) + "|" + s.filter + "|" + s.keyClient }

// VisibleCount answers how many records of typ principal may view: the length of the list the
// visible query walks to its end, without listing it. The ranges visible reads are counted
// (each once per memo); a principal reading several has the ids of all but the largest listed
// and probed in it; for client records the clients implied (TO-4f) are added as visible adds
// them. Unknown permissions answer unknown_permission, as visible does.
func (e *Engine) VisibleCount(ctx context.Context, tenant, principal, typ string, memo *CountMemo) (int, error) {
	if err := validID("principal", principal); err != nil {
		return 0, err
	}
	if err := validID("type", typ); err != nil {
		return 0, err
	}
	v, err := e.view(tenant)
	if err != nil {
		return 0, err
	}
	defer v.close()
	perm := typ + ".view"
	if !v.t.KnowsPermission(perm) {
		return 0, aggregates.Errorf(aggregates.CodeUnknownPermission, "permission %s is not in the policy of tenant %s", perm, tenant)
	}
	p := v.Principal(principal)
	if p == nil || !p.Exists {
		return 0, notFoundOr(v, "no principal %s in tenant %s", principal, tenant)
	}
	if !p.Active() || aggregates.LevelRank(p.Level) <= 0 || slices.Contains(p.Denied, perm) {
		return 0, nil
	}
	r, err := v.newRanges()
	if err != nil {
		return 0, err
	}
	defer r.close()
	srcs, err := r.plan(p, typ, aggregates.NarrowedGrants(v.t, p, perm))
	if err != nil {
		return 0, err
	}
	implied, err := r.impliedClients(p, typ, perm, memo)
	if err != nil {
		return 0, err
	}
	if len(implied) == 0 {
		return r.countUnion(srcs, memo)
	}
	// Implied clients (at most the tenant's clients): the direct ones listed and merged.
	lists := [][]string{implied}
	for _, s := range srcs {
		page, err := r.page(s, "", -1)
		if err != nil {
			return 0, err
		}
		lists = append(lists, page)
	}
	return len(unionSorted(lists)), nil
}

// unionSorted merges ascending lists of distinct ids into one, without sorting them again:
// the lists are few, and long (a unit's clients, every client having an invoice).
func unionSorted(lists [][]string) []string {
	var out []string
	for _, l := range lists {
		if len(out) == 0 {
			out = l
			continue
		}
		merged := make([]string, 0, len(out)+len(l))
		i, j := 0, 0
		for i < len(out) || j < len(l) {
			switch {
			case j == len(l) || (i < len(out) && out[i] < l[j]):
				merged = append(merged, out[i])
				i++
			case i == len(out) || l[j] < out[i]:
				merged = append(merged, l[j])
				j++
			default:
				merged = append(merged, out[i])
				i, j = i+1, j+1
			}
		}
		out = merged
	}
	return out
}

// countUnion counts the distinct ids of srcs: the largest range's count (memo), plus the ids of
// the others that it lacks.
func (r *ranges) countUnion(srcs []source, memo *CountMemo) (int, error) {
	if len(srcs) == 0 {
		return 0, nil
	}
	counts := make([]int, len(srcs))
	big := 0
	for i, s := range srcs {
		n, err := r.count(s, memo)
		if err != nil {
			return 0, err
		}
		counts[i] = n
		if n > counts[big] {
			big = i
		}
	}
	if len(srcs) == 1 {
		return counts[0], nil
	}
	var rest []string
	for i, s := range srcs {
		if i == big {
			continue
		}
		ids, err := r.page(s, "", -1)
		if err != nil {
			return 0, err
		}
		rest = append(rest, ids...)
	}
	slices.Sort(rest)
	rest = slices.Compact(rest)
	n := counts[big]
	for _, id := range rest {
		in, err := r.holds(srcs[big], id)
		if err != nil {
			return 0, err
		}
		if !in {
			n++
		}
	}
	return n, nil
}

// count is the number of distinct ids of s (memo).
func (r *ranges) count(s source, memo *CountMemo) (int, error) {
	k := s.memoKey()
	memo.mu.Lock()
	n, ok := memo.counts[k]
	memo.mu.Unlock()
	if ok {
		return n, nil
	}
	n = 0
	var last []byte
	for ok := r.it.SeekGE(s.prefix); ok; ok = r.it.Next() {
		key := r.it.Key()
		if !bytes.HasPrefix(key, s.prefix) {
			break
		}
		if s.filter != "" && string(r.it.Value()) != s.filter {
			continue
		}
		id := key[len(s.prefix):]
		id = id[:bytes.IndexByte(id, sep)]
		if bytes.Equal(id, last) {
			continue // one record, several relations
		}
		last = append(last[:0], id...)
		n++
	}
	if err := r.it.Error(); err != nil {
		return 0, fmt.Errorf("projections: count index %q: %w", s.prefix, err)
	}
	memo.mu.Lock()
	memo.counts[k] = n
	memo.mu.Unlock()
	return n, nil
}

// holds reports whether range s lists id (passing its filter).
func (r *ranges) holds(s source, id string) (bool, error) {
	prefix := append(append(bytes.Clone(s.prefix), id...), sep)
	if r.it2 == nil {
		if _, err := r.exists(prefix); err != nil { // opens the probe iterator
			return false, err
		}
	}
	for ok := r.it2.SeekGE(prefix); ok && bytes.HasPrefix(r.it2.Key(), prefix); ok = r.it2.Next() {
		if s.filter == "" || string(r.it2.Value()) == s.filter {
			return true, nil
		}
	}
	if err := r.it2.Error(); err != nil {
		return false, fmt.Errorf("projections: probe %q: %w", prefix, err)
	}
	return false, nil
}

// impliedClients lists, ascending, the clients p may view through implication rules only as
// implied lists them (all of them: no cursor), from the memo where a range was seen before.
func (r *ranges) impliedClients(p *aggregates.Principal, typ, perm string, memo *CountMemo) ([]string, error) {
	rules, err := r.impliedRules(p, typ, perm)
	if err != nil {
		return nil, err
	}
	var lists [][]string
	for _, im := range rules {
		if im.having {
			ids, err := r.memoClients("having|"+typ+"|"+im.implT, memo, func() ([]string, error) {
				return r.clientsHaving(typ, im.implT, "", allIDs)
			})
			if err != nil {
				return nil, err
			}
			lists = append(lists, ids)
			continue
		}
		for _, s := range im.srcs {
			ids, err := r.memoClients("of|"+typ+"|"+s.memoKey(), memo, func() ([]string, error) {
				return r.clientsOfSource(s, typ)
			})
			if err != nil {
				return nil, err
			}
			lists = append(lists, ids)
		}
	}
	return unionSorted(lists), nil
}

func (r *ranges) memoClients(k string, memo *CountMemo, list func() ([]string, error)) ([]string, error) {
	memo.mu.Lock()
	ids, ok := memo.clients[k]
	memo.mu.Unlock()
	if ok {
		return ids, nil
	}
	ids, err := list()
	if err != nil {
		return nil, err
	}
	memo.mu.Lock()
	memo.clients[k] = ids
	memo.mu.Unlock()
	return ids, nil
}

// clientsOfSource is clientsOf for one range: the active client records (of type typ) of the
// records s lists, ascending.
func (r *ranges) clientsOfSource(s source, typ string) ([]string, error) {
	var clients []string
	if s.keyClient != "" {
		ok, err := r.exists(s.prefix)
		if err != nil {
			return nil, err
		}
		if ok {
			clients = append(clients, s.keyClient)
		}
	} else {
		for ok := r.it.SeekGE(s.prefix); ok && bytes.HasPrefix(r.it.Key(), s.prefix); ok = r.it.Next() {
			c := r.it.Value()
			if len(c) > 0 && (s.filter == "" || string(c) == s.filter) {
				clients = append(clients, string(c))
			}
		}
		if err := r.it.Error(); err != nil {
			return nil, fmt.Errorf("projections: read index %q: %w", s.prefix, err)
		}
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	out := clients[:0]
	for _, c := range clients {
		ok, err := r.exists(key(nil, r.v.tenant, string(tagAll), typ, c))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}
