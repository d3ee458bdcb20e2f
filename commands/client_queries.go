package commands

import (
	"context"
	"iter"

	"github.com/acl-es/acl/aggregates"
)

// Typed queries of SPEC section 7. Each takes min_seq and as_of as options (MinSeq, After,
// AsOf); an error answer is an *aggregates.Error (not_found, forbidden, invalid_argument,
// unknown_permission, ...), and unavailable and not_caught_up are asked again until ctx ends.

// Check asks whether q.Principal may do q.Permission (to q.Record, if given): the decision
// with the grants that allow it and the events behind them.
func (c *Client) Check(ctx context.Context, tenant string, q aggregates.CheckQuery, opts ...QueryOption) (aggregates.CheckAnswer, error) {
	return queryAs[aggregates.CheckAnswer](ctx, c, tenant, "check", q, opts)
}

// VisiblePage is one page of the records of q.Type on which q.Principal is allowed
// q.Type.q.Action (view by default), ascending, after q.Cursor; NextCursor continues it.
func (c *Client) VisiblePage(ctx context.Context, tenant string, q aggregates.VisibleQuery, opts ...QueryOption) (aggregates.VisibleAnswer, error) {
	return queryAs[aggregates.VisibleAnswer](ctx, c, tenant, "visible", q, opts)
}

// Visible iterates over every id VisiblePage would list, page after page (q.Limit ids a page,
// 0: acld's default), from q.Cursor. A page is never older than the one before it (each asks
// min_seq of the last answer's seq), so a restart or another acld answering does not go back
// in time. An error ends the iteration with ("", err).
func (c *Client) Visible(ctx context.Context, tenant string, q aggregates.VisibleQuery, opts ...QueryOption) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var seen uint64
		for {
			page, err := c.VisiblePage(ctx, tenant, q, append(opts[:len(opts):len(opts)], MinSeq(seen))...)
			if err != nil {
				yield("", err)
				return
			}
			for _, id := range page.IDs {
				if !yield(id, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			q.Cursor, seen = page.NextCursor, max(seen, page.Seq)
		}
	}
}

// Permissions is what q.Principal may do: kind, level, roles, the grants in force with their
// provenance, and the denied permissions.
func (c *Client) Permissions(ctx context.Context, tenant string, q aggregates.PermissionsQuery, opts ...QueryOption) (aggregates.PermissionsAnswer, error) {
	return queryAs[aggregates.PermissionsAnswer](ctx, c, tenant, "permissions", q, opts)
}

// Principals lists who is allowed q.Permission on q.Record.
func (c *Client) Principals(ctx context.Context, tenant string, q aggregates.PrincipalsQuery, opts ...QueryOption) (aggregates.PrincipalsAnswer, error) {
	return queryAs[aggregates.PrincipalsAnswer](ctx, c, tenant, "principals", q, opts)
}

// Recipients lists who is notified about q.Record.
func (c *Client) Recipients(ctx context.Context, tenant string, q aggregates.RecipientsQuery, opts ...QueryOption) (aggregates.RecipientsAnswer, error) {
	return queryAs[aggregates.RecipientsAnswer](ctx, c, tenant, "recipients", q, opts)
}

// HistoryPage is one page of the history of a principal or a record (r.Principal or r.Record),
// oldest first; NextCursor continues it. Options override r.MinSeq and r.AsOf.
func (c *Client) HistoryPage(ctx context.Context, tenant string, r aggregates.HistoryRequest, opts ...QueryOption) (aggregates.HistoryAnswer, error) {
	readOptions(opts).onto(&r.MinSeq, &r.AsOf)
	return queryAs[aggregates.HistoryAnswer](ctx, c, tenant, "history", r, nil)
}

// History iterates over every event HistoryPage would list, page after page, as Visible does.
// Without r.To, the pages after the first stop at the first page's seq: the history as it
// stood when the iteration began.
func (c *Client) History(ctx context.Context, tenant string, r aggregates.HistoryRequest, opts ...QueryOption) iter.Seq2[aggregates.HistoryEvent, error] {
	return func(yield func(aggregates.HistoryEvent, error) bool) {
		var seen uint64
		for {
			page, err := c.HistoryPage(ctx, tenant, r, append(opts[:len(opts):len(opts)], MinSeq(seen))...)
			if err != nil {
				yield(aggregates.HistoryEvent{}, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			r.Cursor, seen = page.NextCursor, max(seen, page.Seq)
			if r.To == nil {
				r.To = &aggregates.Moment{Seq: page.Seq}
			}
		}
	}
}

// Diff compares r.Principal's access at r.From and at r.To: grants added and removed, visible
// counts, and the events between. Options override r.MinSeq and r.AsOf.
func (c *Client) Diff(ctx context.Context, tenant string, r aggregates.DiffRequest, opts ...QueryOption) (aggregates.DiffAnswer, error) {
	readOptions(opts).onto(&r.MinSeq, &r.AsOf)
	return queryAs[aggregates.DiffAnswer](ctx, c, tenant, "diff", r, nil)
}

// Review asks one page of the access review (SPEC section 8); pass the answer's NextCursor and
// Seq (as AsOf) on to read the next page at the same moment.
func (c *Client) Review(ctx context.Context, tenant string, r aggregates.ReviewRequest, opts ...QueryOption) (aggregates.ReviewAnswer, error) {
	readOptions(opts).onto(&r.MinSeq, &r.AsOf)
	return queryAs[aggregates.ReviewAnswer](ctx, c, tenant, "review", r, nil)
}

// Tenant is a tenant's overview: preset, features, roles, units, record counts per type, and
// one page of its principals (q.Search filters them; NextCursor continues).
func (c *Client) Tenant(ctx context.Context, tenant string, q aggregates.TenantQuery, opts ...QueryOption) (aggregates.TenantAnswer, error) {
	return queryAs[aggregates.TenantAnswer](ctx, c, tenant, "tenant", q, opts)
}

// onto sets the min_seq and as_of fields of a request that has its own (history, diff,
// review): the larger min_seq, and as_of when an option gives one.
func (o queryOptions) onto(minSeq *uint64, asOf **aggregates.Moment) {
	*minSeq = max(*minSeq, o.minSeq)
	if o.asOf != nil {
		*asOf = o.asOf
	}
}
