package projections

import (
	"context"
	"slices"
	"strings"

	"github.com/acl-es/acl/aggregates"
)

// Visible lists, ascending and by pages, the records of a type on which a principal is allowed
// <type>.<action>. The principal's narrowed grants of that permission select index ranges
// (plan.go), each is read from the cursor on for at most one page, and the pages are merged:
// the cost follows the principal's scopes and the page size, not the number of records.
func (e *Engine) Visible(ctx context.Context, tenant string, q VisibleQuery) (VisibleAnswer, error) {
	limit, err := e.checkVisible(&q)
	if err != nil {
		return VisibleAnswer{}, err
	}
	v, err := e.view(tenant)
	if err != nil {
		return VisibleAnswer{}, err
	}
	defer v.close()
	perm := q.Type + "." + q.Action
	if !v.t.KnowsPermission(perm) {
		return VisibleAnswer{}, aggregates.Errorf(aggregates.CodeUnknownPermission,
			"permission %s is not in the policy of tenant %s", perm, tenant)
	}
	p := v.Principal(q.Principal)
	if p == nil || !p.Exists {
		return VisibleAnswer{}, notFoundOr(v, "no principal %s in tenant %s", q.Principal, tenant)
	}
	ans := VisibleAnswer{IDs: []string{}, Seq: v.seq}
	// As Check: a removed or disabled principal, or a denied permission, sees nothing.
	if !p.Active() || aggregates.LevelRank(p.Level) <= 0 || slices.Contains(p.Denied, perm) {
		return ans, nil
	}
	r, err := v.newRanges()
	if err != nil {
		return VisibleAnswer{}, err
	}
	defer r.close()
	pages, err := r.direct(p, q.Type, perm, q.Cursor, limit+1)
	if err != nil {
		return VisibleAnswer{}, err
	}
	implied, err := r.implied(p, q.Type, perm, q.Cursor, limit+1)
	if err != nil {
		return VisibleAnswer{}, err
	}
	ids := mergePages(append(pages, implied...), limit+1)
	if len(ids) > limit {
		ids, ans.NextCursor = ids[:limit], ids[limit-1]
	}
	ans.IDs = append(ans.IDs, ids...)
	return ans, nil
}

// checkVisible validates the query, fills the default action and returns the page size.
func (e *Engine) checkVisible(q *VisibleQuery) (int, error) {
	if q.Action == "" {
		q.Action = "view"
	}
	if err := validID("principal", q.Principal); err != nil {
		return 0, err
	}
	if err := validID("type", q.Type); err != nil {
		return 0, err
	}
	if err := validID("action", q.Action); err != nil {
		return 0, err
	}
	if q.Cursor != "" {
		if err := validID("cursor", q.Cursor); err != nil {
			return 0, err
		}
	}
	switch {
	case q.Limit < 0 || q.Limit > e.opts.MaxLimit:
		return 0, invalid("limit %d is outside 0..%d", q.Limit, e.opts.MaxLimit)
	case q.Limit == 0:
		return e.opts.DefaultLimit, nil
	}
	return q.Limit, nil
}

// mergePages merges ascending pages into the first n distinct ids.
func mergePages(pages [][]string, n int) []string {
	var all []string
	for _, p := range pages {
		all = append(all, p...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// unitKind returns K of scope unit:K.
func unitKind(scope string) (string, bool) { return strings.CutPrefix(scope, "unit:") }
