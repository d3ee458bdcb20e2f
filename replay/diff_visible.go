package replay

import (
	"context"
	"fmt"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// visibleDiff walks the ids of typ that principal could view at two moments (before and after:
// engines over them, nil when the principal did not exist) in step, both ascending, a page of
// each at a time: the difference costs one pass over both lists and holds two pages, however
// many records the principal sees.
func visibleDiff(ctx context.Context, tenant, principal, typ string, before, after *projections.Engine) (VisibleCount, error) {
	v := VisibleCount{Type: typ, Gained: []string{}, Lost: []string{}}
	b := newIDPages(tenant, principal, typ, before)
	a := newIDPages(tenant, principal, typ, after)
	note := func(ids *[]string, n *int, id string) {
		if *n < aggregates.MaxDiffIDs {
			*ids = append(*ids, id)
		}
		*n++
	}
	for {
		x, okB, err := b.peek(ctx)
		if err != nil {
			return VisibleCount{}, err
		}
		y, okA, err := a.peek(ctx)
		if err != nil {
			return VisibleCount{}, err
		}
		switch {
		case !okB && !okA:
			return v, nil
		case okB && (!okA || x < y):
			note(&v.Lost, &v.LostCount, x)
			v.From++
			b.pop()
		case okA && (!okB || y < x):
			note(&v.Gained, &v.GainedCount, y)
			v.To++
			a.pop()
		default:
			v.From++
			v.To++
			b.pop()
			a.pop()
		}
	}
}

// idPages reads a visible list one page at a time.
type idPages struct {
	e      *projections.Engine // nil: an empty list
	tenant string
	q      projections.VisibleQuery
	page   []string
	end    bool
}

func newIDPages(tenant, principal, typ string, e *projections.Engine) *idPages {
	return &idPages{e: e, tenant: tenant, end: e == nil,
		q: projections.VisibleQuery{Principal: principal, Type: typ, Action: "view", Limit: MaxHistoryLimit}}
}

// peek returns the next id, reading the next page when this one is done; false at the end.
func (p *idPages) peek(ctx context.Context) (string, bool, error) {
	for len(p.page) == 0 {
		if p.end {
			return "", false, nil
		}
		ans, err := p.e.Visible(ctx, p.tenant, p.q)
		if err != nil {
			return "", false, fmt.Errorf("replay: diff: visible %s: %w", p.q.Type, err)
		}
		p.page, p.q.Cursor, p.end = ans.IDs, ans.NextCursor, ans.NextCursor == ""
	}
	return p.page[0], true, nil
}

func (p *idPages) pop() { p.page = p.page[1:] }
