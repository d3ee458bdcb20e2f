package replay

import (
	"context"
	"maps"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Review answers the review query of tenant (SPEC section 8): a page of principals at the
// moment asked, each with what permissions answers, the number of records of each type it may
// view (visible walked to the end) and the last event of its history up to the moment, and per
// type who on the page may view how many. It is a client of the query engine at that moment
// (as diff is), not a second copy of the rules.
func (s *Service) Review(ctx context.Context, tenant string, req aggregates.ReviewRequest) (aggregates.ReviewAnswer, error) {
	limit := req.Limit
	switch {
	case limit < 0 || limit > MaxHistoryLimit:
		return aggregates.ReviewAnswer{}, invalidf("review: limit %d: want 1 to %d (0 means 100)", limit, MaxHistoryLimit)
	case limit == 0:
		limit = 100
	}
	for _, id := range append(slices.Clone(req.Principals), req.Types...) {
		if !events.ValidToken(id) {
			return aggregates.ReviewAnswer{}, invalidf("review: %q is not a valid id", id)
		}
	}
	if req.Cursor != "" && !events.ValidToken(req.Cursor) {
		return aggregates.ReviewAnswer{}, invalidf("review: cursor %q is not a valid id", req.Cursor)
	}
	if err := s.waitModel(ctx, req.MinSeq); err != nil {
		return aggregates.ReviewAnswer{}, err
	}
	// Now is the last sequence stored: read as of it, every page of a walk that passes it as
	// as_of (aclctl review does) reads one moment.
	at := Moment{}
	if req.AsOf != nil {
		at = *req.AsOf
	} else {
		last, err := s.store.LastSeq(ctx)
		if err != nil {
			return aggregates.ReviewAnswer{}, unavailable(err, "review: the stream's last sequence")
		}
		at.Seq = last
	}
	seq, err := s.asOfSeq(ctx, at)
	if err != nil {
		return aggregates.ReviewAnswer{}, err
	}
	e, release, err := s.AsOf(ctx, tenant, Moment{Seq: seq})
	if err != nil {
		return aggregates.ReviewAnswer{}, err
	}
	defer release()
	ids, next, err := reviewPage(ctx, e, tenant, req, limit)
	if err != nil {
		return aggregates.ReviewAnswer{}, err
	}
	ans := aggregates.ReviewAnswer{Principals: []aggregates.ReviewPrincipal{}, Types: []aggregates.ReviewType{}, NextCursor: next, Seq: seq}
	viewers := map[string][]aggregates.ReviewViewer{}
	for _, id := range ids {
		rp, err := s.reviewOne(ctx, e, tenant, id, req.Types, seq)
		if aggregates.ErrorCode(err) == aggregates.CodeNotFound && len(req.Principals) > 0 {
			continue // a listed principal that does not exist at the moment
		}
		if err != nil {
			return aggregates.ReviewAnswer{}, err
		}
		ans.Principals = append(ans.Principals, rp)
		for typ, n := range rp.Visible {
			if n > 0 {
				viewers[typ] = append(viewers[typ], aggregates.ReviewViewer{Principal: id, Count: n})
			}
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(viewers)) {
		ans.Types = append(ans.Types, aggregates.ReviewType{Type: typ, Viewers: viewers[typ]})
	}
	return ans, nil
}

// reviewPage lists the page's principal ids: the listed ones after the cursor, or the tenant's.
func reviewPage(ctx context.Context, e *projections.Engine, tenant string, req aggregates.ReviewRequest, limit int) ([]string, string, error) {
	if len(req.Principals) > 0 {
		ids := slices.Compact(slices.Sorted(slices.Values(req.Principals)))
		ids = slices.DeleteFunc(ids, func(id string) bool { return id <= req.Cursor })
		if len(ids) > limit {
			return ids[:limit], ids[limit-1], nil
		}
		return ids, "", nil
	}
	t, err := e.Tenant(ctx, tenant, aggregates.TenantQuery{Limit: limit, Cursor: req.Cursor})
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for _, p := range t.Principals {
		ids = append(ids, p.Principal)
	}
	return ids, t.NextCursor, nil
}

// reviewOne is one principal's entry at seq (e answers as of seq).
func (s *Service) reviewOne(ctx context.Context, e *projections.Engine, tenant, id string, types []string, seq uint64) (aggregates.ReviewPrincipal, error) {
	p, err := e.Permissions(ctx, tenant, projections.PermissionsQuery{Principal: id})
	if err != nil {
		return aggregates.ReviewPrincipal{}, err
	}
	rp := aggregates.ReviewPrincipal{Principal: id, Kind: p.Kind, Level: p.Level, Roles: p.Roles, Grants: p.Grants,
		Visible: map[string]int{}}
	if len(types) == 0 {
		types = viewTypes(p.Grants)
	}
	for _, typ := range types {
		v, err := visibleDiff(ctx, tenant, id, typ, nil, e)
		if aggregates.ErrorCode(err) == aggregates.CodeUnknownPermission {
			continue // a type the policy cannot view
		}
		if err != nil {
			return aggregates.ReviewPrincipal{}, err
		}
		rp.Visible[typ] = v.To
	}
	// The last event of its history up to seq: the history pages end at the newest.
	h := HistoryRequest{Principal: id, To: &Moment{Seq: seq}, Limit: MaxHistoryLimit}
	for {
		page, err := s.History(ctx, tenant, h)
		if err != nil {
			return aggregates.ReviewPrincipal{}, err
		}
		if n := len(page.Events); n > 0 {
			ev := page.Events[n-1]
			rp.LastChange = &aggregates.ReviewChange{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Via: ev.Via,
				Command: ev.Cause, CommandID: ev.CommandID, Event: ev.ID, Type: ev.Type}
		}
		if page.NextCursor == "" {
			break
		}
		h.Cursor = page.NextCursor
	}
	return rp, nil
}
