package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Review answers the review query of tenant (SPEC section 8): a page of principals at the
// moment asked, each with what permissions answers, the number of records of each type it may
// view (the length of visible's list, Engine.VisibleCount) and the last event of its history
// up to the moment, and per type who on the page may view how many. It is a client of the query engine at that moment
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
	memo := s.reviewMemo(tenant, seq)
	for _, id := range ids {
		rp, err := reviewOne(ctx, e, tenant, id, req.Types, memo)
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
	if err := s.lastChanges(ctx, tenant, ans.Principals, seq); err != nil {
		return aggregates.ReviewAnswer{}, err
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
	return e.PrincipalPage(ctx, tenant, req.Cursor, limit)
}

// reviewOne is one principal's entry but its last change (e answers as of the review's moment,
// memo counts ranges at it).
func reviewOne(ctx context.Context, e *projections.Engine, tenant, id string, types []string, memo *projections.CountMemo) (aggregates.ReviewPrincipal, error) {
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
		// The length of the visible list, counted without listing it: at 10^6 records a
		// principal at level full would list ~350,000 cases.
		n, err := e.VisibleCount(ctx, tenant, id, typ, memo)
		if aggregates.ErrorCode(err) == aggregates.CodeUnknownPermission {
			continue // a type the policy cannot view
		}
		if err != nil {
			return aggregates.ReviewPrincipal{}, err
		}
		rp.Visible[typ] = n
	}
	return rp, nil
}

// reviewMemo is the count memo of tenant at seq: a walk of the review reads every page at one
// moment, and the ranges many principals read (every record of a type, a unit's) are counted
// once for the walk. One walk at a time keeps its memo; another moment replaces it.
func (s *Service) reviewMemo(tenant string, seq uint64) *projections.CountMemo {
	s.review.mu.Lock()
	defer s.review.mu.Unlock()
	if s.review.memo == nil || s.review.tenant != tenant || s.review.seq != seq {
		s.review.tenant, s.review.seq, s.review.memo = tenant, seq, projections.NewCountMemo()
	}
	return s.review.memo
}

// lastChanges sets each principal's last change up to seq: the last event of its history (the
// newest message of its log and the tenant's policy log in its lifetime, as History merges
// them), found by one seek back in each log, and the page's messages read from the stream at
// once, instead of walking every principal's history from its start.
func (s *Service) lastChanges(ctx context.Context, tenant string, ps []aggregates.ReviewPrincipal, seq uint64) error {
	_, hi, err := s.historyBounds(ctx, HistoryRequest{To: &Moment{Seq: seq}})
	if err != nil {
		return err
	}
	snap := s.audit.pb.NewSnapshot()
	defer snap.Close()
	var picks []pick
	var who []int
	for i := range ps {
		st, err := readState[principalState](snap, principalStateKey(tenant, ps[i].Principal))
		if err != nil {
			return err
		}
		if st == nil || st.First == 0 {
			continue
		}
		end := hi
		if st.Removed != 0 {
			end = min(hi, st.Removed)
		}
		own, ownE, err := lastEntry(snap, principalLog(tenant, ps[i].Principal), 0, hi)
		if err != nil {
			return err
		}
		wide, wideE, err := lastEntry(snap, tenantLog(tenant), st.First, end)
		if err != nil {
			return err
		}
		p := pick{seq: max(own, wide)}
		if p.seq == 0 {
			continue
		}
		if own == p.seq {
			p.entry = p.entry.merge(ownE)
		}
		if wide == p.seq {
			p.entry = p.entry.merge(wideE)
		}
		picks, who = append(picks, p), append(who, i)
	}
	if len(picks) == 0 {
		return nil
	}
	seqs := make([]uint64, len(picks))
	for i, p := range picks {
		seqs[i] = p.seq
	}
	msgs, err := s.getter.getAll(ctx, seqs)
	if err != nil {
		return unavailable(err, "review: read events from the stream")
	}
	for k, p := range picks {
		it := p.entry[len(p.entry)-1]
		if it.I >= len(msgs[k].Events) {
			return fmt.Errorf("replay: audit entry of seq %d names envelope %d of %d", p.seq, it.I, len(msgs[k].Events))
		}
		ev := msgs[k].Events[it.I]
		ps[who[k]].LastChange = &aggregates.ReviewChange{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Via: ev.Via,
			Command: ev.Cause, CommandID: ev.CommandID, Event: ev.ID, Type: ev.Type}
	}
	return nil
}

// lastEntry is the newest entry of the log at prefix in [lo, hi] (seq 0: none).
func lastEntry(r pebble.Reader, prefix []byte, lo, hi uint64) (uint64, logEntry, error) {
	if lo > hi {
		return 0, nil, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: logKey(prefix, lo), UpperBound: logKey(prefix, hi+1)})
	if err != nil {
		return 0, nil, fmt.Errorf("replay: scan audit log %q: %w", prefix, err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, nil, it.Error()
	}
	seq, err := logSeq(prefix, it.Key())
	if err != nil {
		return 0, nil, err
	}
	var e logEntry
	if err := json.Unmarshal(it.Value(), &e); err != nil {
		return 0, nil, fmt.Errorf("replay: decode audit entry %q: %w", it.Key(), err)
	}
	return seq, e, nil
}
