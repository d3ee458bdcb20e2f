package replay

import (
	"context"
	"strconv"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// History limits (SPEC section 7: the same as visible's).
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 1000
)

// The history and diff bodies and answers live in aggregates, where the Go client (package
// commands) shares them.
type (
	HistoryRequest = aggregates.HistoryRequest
	HistoryEvent   = aggregates.HistoryEvent
	HistoryAnswer  = aggregates.HistoryAnswer
	DiffRequest    = aggregates.DiffRequest
	DiffAnswer     = aggregates.DiffAnswer
	VisibleCount   = aggregates.VisibleCount
)

// validateHistory checks the body and returns the page size.
func validateHistory(r *HistoryRequest) (int, error) {
	switch {
	case (r.Principal == "") == (r.Record == nil):
		return 0, invalidf("history: give exactly one of principal and record")
	case r.Principal != "" && !events.ValidToken(r.Principal):
		return 0, invalidf("history: principal %q is not a valid id", r.Principal)
	case r.Record != nil && (!events.ValidToken(r.Record.Type) || !events.ValidToken(r.Record.ID)):
		return 0, invalidf("history: record %q/%q is not a valid type and id", r.Record.Type, r.Record.ID)
	case r.Limit < 0 || r.Limit > MaxHistoryLimit:
		return 0, invalidf("history: limit %d: want 1 to %d (0 means %d)", r.Limit, MaxHistoryLimit, DefaultHistoryLimit)
	}
	if r.Cursor != "" {
		if _, err := strconv.ParseUint(r.Cursor, 10, 64); err != nil {
			return 0, invalidf("history: cursor %q is not a stream sequence", r.Cursor)
		}
	}
	if r.Limit == 0 {
		return DefaultHistoryLimit, nil
	}
	return r.Limit, nil
}

// History answers the history query of tenant.
func (s *Service) History(ctx context.Context, tenant string, req HistoryRequest) (HistoryAnswer, error) {
	limit, err := validateHistory(&req)
	if err != nil {
		return HistoryAnswer{}, err
	}
	lo, hi, err := s.historyBounds(ctx, req)
	if err != nil {
		return HistoryAnswer{}, err
	}
	snap := s.audit.pb.NewSnapshot()
	defer snap.Close()
	ranges, err := historyRanges(snap, tenant, req, lo, hi)
	if err != nil {
		return HistoryAnswer{}, err
	}
	page, more, err := mergePage(ranges, limit)
	if err != nil {
		return HistoryAnswer{}, err
	}
	evs, err := s.pageEvents(ctx, page)
	if err != nil {
		return HistoryAnswer{}, err
	}
	ans := HistoryAnswer{Events: evs, Seq: hi}
	if more {
		ans.NextCursor = strconv.FormatUint(page[len(page)-1].seq, 10)
	}
	return ans, nil
}

// historyBounds resolves from, to, as_of and the cursor into the sequences [lo, hi] to show,
// after waiting (bounded) until the index has applied hi and min_seq.
func (s *Service) historyBounds(ctx context.Context, req HistoryRequest) (lo, hi uint64, err error) {
	// The audit index follows the stream on its own: a history is at least as fresh as the
	// live read model was when asked, so that it never silently misses what the other queries
	// already show (a new replay directory catching up answers not_caught_up meanwhile).
	floor := req.MinSeq
	if s.proj != nil {
		floor = max(floor, s.proj.Applied())
	}
	if err := s.waitAudit(ctx, floor); err != nil {
		return 0, 0, err
	}
	hi = s.audit.Applied()
	bounded := false
	for _, m := range []*Moment{req.To, req.AsOf} {
		if m == nil {
			continue
		}
		seq, err := resolve(ctx, s.store, *m)
		if err != nil {
			return 0, 0, err
		}
		if err := s.waitAudit(ctx, seq); err != nil {
			return 0, 0, err
		}
		if !bounded || seq < hi {
			hi, bounded = seq, true
		}
	}
	if req.From != nil {
		if lo, err = resolve(ctx, s.store, *req.From); err != nil {
			return 0, 0, err
		}
	}
	if req.Cursor != "" {
		c, _ := strconv.ParseUint(req.Cursor, 10, 64) // validated
		lo = max(lo, c+1)
	}
	return lo, hi, nil
}

// waitAudit waits, up to the service's bound, for the audit index to apply seq.
func (s *Service) waitAudit(ctx context.Context, seq uint64) error {
	if seq == 0 || s.audit.Applied() >= seq {
		return nil
	}
	s.opts.Bulk.Want(seq)
	wctx, cancel := context.WithTimeout(ctx, s.opts.Wait)
	defer cancel()
	if err := s.audit.WaitFor(wctx, seq); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return aggregates.Errorf(aggregates.CodeNotCaughtUp,
			"the audit index has applied sequence %d, not yet %d; retry", s.audit.Applied(), seq)
	}
	return nil
}
