package projections

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/cockroachdb/pebble/v2"
)

// impliedRule is what one implication rule adds to a visible query of p on client records
// (TO-4f): client C is visible when p is directly allowed the rule's permission on some active
// record of type implT whose client is C (aggregates.Check, rule 5). Either every client having
// an active implT record (having: p is allowed implT everywhere), or the clients of the implT
// records that srcs list. Index values carry each record's client, so the implying records'
// clients come from the index alone.
type impliedRule struct {
	implT  string
	having bool
	srcs   []source
}

// impliedRules lists what the policy's implication rules add to p's visible query of perm on
// typ: nothing unless typ is a client record type and p does not view every client already.
// visible, its count and the change feed's comparison of two states (sameRanges) read it.
func (r *ranges) impliedRules(p *aggregates.Principal, typ, perm string) ([]impliedRule, error) {
	if !aggregates.IsClientRecordType(typ) {
		return nil, nil
	}
	if p.Kind != aggregates.KindClientContact && aggregates.AnyNarrowedScope(r.v.t, p, perm, isScopeAll) {
		return nil, nil // every client is visible already: implications add nothing
	}
	var out []impliedRule
	for _, rule := range r.v.t.Policy.Implies {
		if rule.Grants != perm || rule.Field != "client" || slices.Contains(p.Denied, rule.Permission) {
			continue
		}
		im := impliedRule{implT: aggregates.PermissionType(rule.Permission)}
		grants := aggregates.NarrowedGrants(r.v.t, p, rule.Permission)
		if p.Kind != aggregates.KindClientContact && hasScope(grants, aggregates.ScopeAll) {
			im.having = true
		} else {
			var err error
			if im.srcs, err = r.plan(p, im.implT, grants); err != nil {
				return nil, err
			}
		}
		out = append(out, im)
	}
	return out, nil
}

// implied returns the pages that the policy's implication rules add to a visible query on
// client records (impliedRules), each its first n clients after cursor.
func (r *ranges) implied(p *aggregates.Principal, typ, perm, cursor string, n int) ([][]string, error) {
	rules, err := r.impliedRules(p, typ, perm)
	if err != nil {
		return nil, err
	}
	var pages [][]string
	for _, im := range rules {
		var page []string
		if im.having {
			page, err = r.clientsHaving(typ, im.implT, cursor, n)
		} else {
			page, err = r.clientsOf(im.srcs, typ, cursor, n)
		}
		if err != nil {
			return nil, err
		}
		pages = append(pages, page)
	}
	return pages, nil
}

func isScopeAll(scope string) bool { return scope == aggregates.ScopeAll }

func hasScope(grants []aggregates.GrantUse, scope string) bool {
	for _, g := range grants {
		if g.Scope == scope {
			return true
		}
	}
	return false
}

// clientsHaving walks the active client records after cursor and keeps those with at least
// one active record of implT: what a principal allowed implT everywhere is implied to see.
func (r *ranges) clientsHaving(typ, implT, cursor string, n int) ([]string, error) {
	all := source{prefix: key(nil, r.v.tenant, string(tagAll), typ)}
	var out []string
	for len(out) < n {
		ids, err := r.page(all, cursor, n)
		if err != nil || len(ids) == 0 {
			return out, err
		}
		for _, c := range ids {
			ok, err := r.exists(key(nil, r.v.tenant, string(tagClient), c, implT))
			if err != nil {
				return nil, err
			}
			if ok && len(out) < n {
				out = append(out, c)
			}
		}
		cursor = ids[len(ids)-1]
	}
	return out, nil
}

// clientsOf collects the clients of every record that srcs list (clientsOfSource: active
// client records), and keeps those after cursor, at most n.
func (r *ranges) clientsOf(srcs []source, typ, cursor string, n int) ([]string, error) {
	var clients []string
	for _, s := range srcs {
		cs, err := r.clientsOfSource(s, typ)
		if err != nil {
			return nil, err
		}
		clients = append(clients, cs...)
	}
	slices.Sort(clients)
	clients = slices.Compact(clients)
	var out []string
	for _, c := range clients {
		if c <= cursor {
			continue
		}
		if len(out) == n {
			break
		}
		out = append(out, c)
	}
	return out, nil
}

// exists reports whether some key starts with prefix, with the probe iterator.
func (r *ranges) exists(prefix []byte) (bool, error) {
	if r.it2 == nil {
		lo := tenantPrefix(r.v.tenant)
		it, err := r.v.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return false, fmt.Errorf("projections: probe: %w", err)
		}
		r.it2 = it
	}
	ok := r.it2.SeekGE(prefix) && bytes.HasPrefix(r.it2.Key(), prefix)
	if err := r.it2.Error(); err != nil {
		return false, fmt.Errorf("projections: probe %q: %w", prefix, err)
	}
	return ok, nil
}
