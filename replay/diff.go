package replay

import (
	"context"
	"slices"
	"strings"

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
		h, err := s.History(ctx, tenant, HistoryRequest{Principal: req.Principal,
			From: &Moment{Seq: from + 1}, To: &Moment{Seq: to}, Limit: MaxHistoryLimit})
		if err != nil {
			return DiffAnswer{}, err
		}
		ans.Events, ans.EventsNextCursor = h.Events, h.NextCursor
	}
	return ans, nil
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
