package replay

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Diff answers the diff query of tenant.
func (s *Service) Diff(ctx context.Context, tenant string, req DiffRequest) (DiffAnswer, error) {
	if !events.ValidToken(req.Principal) {
		return DiffAnswer{}, invalidf("diff: principal %q is not a valid id", req.Principal)
	}
	if req.From == nil || req.To == nil {
		return DiffAnswer{}, invalidf("diff: from and to are required")
	}
	if err := s.waitModel(ctx, req.MinSeq); err != nil {
		return DiffAnswer{}, err
	}
	from, err := s.asOfSeq(ctx, *req.From)
	if err != nil {
		return DiffAnswer{}, err
	}
	to, err := s.asOfSeq(ctx, *req.To)
	if err != nil {
		return DiffAnswer{}, err
	}
	if from > to {
		return DiffAnswer{}, invalidf("diff: from (sequence %d) is after to (sequence %d)", from, to)
	}
	before, err := s.accessAt(ctx, tenant, req.Principal, from)
	if err != nil {
		return DiffAnswer{}, err
	}
	defer before.release()
	after, err := s.accessAt(ctx, tenant, req.Principal, to)
	if err != nil {
		return DiffAnswer{}, err
	}
	defer after.release()
	if after.engine == nil {
		return DiffAnswer{}, notFoundf("no principal %s in tenant %s at sequence %d", req.Principal, tenant, to)
	}
	ans := DiffAnswer{Added: aggregates.GrantsMinus(after.grants, before.grants), Removed: aggregates.GrantsMinus(before.grants, after.grants),
		Visible: []VisibleCount{}, FromSeq: from, Seq: to, Events: []HistoryEvent{}}
	for _, typ := range viewTypes(before.grants, after.grants) {
		v, err := visibleDiff(ctx, tenant, req.Principal, typ, before.engine, after.engine)
		if err != nil {
			return DiffAnswer{}, err
		}
		ans.Visible = append(ans.Visible, v)
	}
	if from < to {
		if ans.Events, ans.EventsNextCursor, err = s.diffEvents(ctx, tenant, req.Principal, from, to, ans.Visible); err != nil {
			return DiffAnswer{}, err
		}
	}
	return ans, nil
}

// diffEvents answers the causes of a diff over (from, to]: the principal's history (a page of
// MaxHistoryLimit, continued by the history query from nextCursor), and the own events in that
// window of the records the diff names as gained or lost, at most MaxHistoryLimit of them, the
// earliest, less their assignments and unassignments (the principal's own are in its history,
// another's change nobody else's access). The principal's history alone missed a record gained
// or lost by a change of the record itself (an invoice linked to a case the principal is assigned to, a record joining the
// principal's unit, a record's client): it was listed with no event naming it.
func (s *Service) diffEvents(ctx context.Context, tenant, principal string, from, to uint64, vis []VisibleCount) ([]HistoryEvent, string, error) {
	h, err := s.History(ctx, tenant, HistoryRequest{Principal: principal,
		From: &Moment{Seq: from + 1}, To: &Moment{Seq: to}, Limit: MaxHistoryLimit})
	if err != nil {
		return nil, "", err
	}
	evs, cursor := h.Events, h.NextCursor
	snap := s.audit.pb.NewSnapshot()
	defer snap.Close()
	causes, err := recordCauses(snap, tenant, vis, from+1, h.Seq)
	if err != nil || len(causes) == 0 {
		return evs, cursor, err
	}
	others, err := s.pageEvents(ctx, causes)
	if err != nil {
		return nil, "", err
	}
	seen := make(map[string]bool, len(evs))
	for _, e := range evs {
		seen[e.ID] = true
	}
	for _, e := range others {
		// A record's assignments and unassignments change the access of the principal they
		// name, whose history has them already: another principal's are no cause.
		if seen[e.ID] || e.Type == events.RecordAssigned || e.Type == events.RecordUnassigned {
			continue
		}
		evs = append(evs, e)
	}
	slices.SortStableFunc(evs, func(a, b HistoryEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	return evs, cursor, nil
}

// recordCauses lists the own events in [lo, hi] of the records vis names as gained or lost, by
// sequence, at most MaxHistoryLimit events. A record the index does not know is skipped.
func recordCauses(r pebble.Reader, tenant string, vis []VisibleCount, lo, hi uint64) ([]pick, error) {
	var ranges []*logRange
	defer func() {
		for _, l := range ranges {
			l.close()
		}
	}()
	for _, v := range vis {
		for _, id := range slices.Concat(v.Gained, v.Lost) {
			log, _, _, _, err := subject(r, tenant, HistoryRequest{Record: &events.RecordRef{Type: v.Type, ID: id}})
			if aggregates.ErrorCode(err) == aggregates.CodeNotFound {
				continue
			}
			if err != nil {
				return nil, err
			}
			l, err := newLogRange(r, log, lo, hi, ownOnly)
			if err != nil {
				return nil, err
			}
			ranges = append(ranges, l)
		}
	}
	picks, _, err := mergePage(ranges, MaxHistoryLimit)
	ranges = nil // closed by mergePage
	return picks, err
}

// access is a principal's grants at one moment, and the engine over that moment (nil when the
// principal did not exist then) until release.
type access struct {
	engine  *projections.Engine
	grants  []aggregates.GrantUse
	release func()
}

// accessAt answers a principal's grants at seq from the as_of engine, which it keeps.
func (s *Service) accessAt(ctx context.Context, tenant, principal string, seq uint64) (access, error) {
	e, release, err := s.AsOf(ctx, tenant, Moment{Seq: seq})
	if err != nil {
		return access{}, err
	}
	p, err := e.Permissions(ctx, tenant, projections.PermissionsQuery{Principal: principal})
	if aggregates.ErrorCode(err) == aggregates.CodeNotFound {
		release()
		return access{grants: []aggregates.GrantUse{}, release: func() {}}, nil // not yet
	}
	if err != nil {
		release()
		return access{}, err
	}
	return access{engine: e, grants: p.Grants, release: release}, nil
}

// viewTypes lists, ascending, the record types of the view permissions among the grants.
func viewTypes(grants ...[]aggregates.GrantUse) []string {
	var types []string
	for _, gs := range grants {
		for _, g := range gs {
			if typ, action, _ := strings.Cut(g.Permission, "."); action == "view" {
				types = append(types, typ)
			}
		}
	}
	slices.Sort(types)
	return slices.Compact(types)
}

// waitModel waits, up to the service's bound, until the live read model has applied seq.
func (s *Service) waitModel(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	_, err := s.asOfSeq(ctx, Moment{Seq: seq})
	return err
}
