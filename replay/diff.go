package replay

import (
	"context"
	"fmt"
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
	after, err := s.accessAt(ctx, tenant, req.Principal, to)
	if err != nil {
		return DiffAnswer{}, err
	}
	if !after.exists {
		return DiffAnswer{}, notFoundf("no principal %s in tenant %s at sequence %d", req.Principal, tenant, to)
	}
	ans := DiffAnswer{Added: minus(after.grants, before.grants), Removed: minus(before.grants, after.grants),
		Visible: counts(before.visible, after.visible), FromSeq: from, Seq: to, Events: []HistoryEvent{}}
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

// access is what a principal could do at one moment.
type access struct {
	exists  bool
	grants  []aggregates.GrantUse
	visible map[string]int // type -> records it could view
}

// accessAt answers a principal's grants and visible counts at seq from the as_of engine.
func (s *Service) accessAt(ctx context.Context, tenant, principal string, seq uint64) (access, error) {
	e, release, err := s.AsOf(ctx, tenant, Moment{Seq: seq})
	if err != nil {
		return access{}, err
	}
	defer release()
	p, err := e.Permissions(ctx, tenant, projections.PermissionsQuery{Principal: principal})
	if aggregates.ErrorCode(err) == aggregates.CodeNotFound {
		return access{grants: []aggregates.GrantUse{}, visible: map[string]int{}}, nil // not yet
	}
	if err != nil {
		return access{}, err
	}
	a := access{exists: true, grants: p.Grants, visible: map[string]int{}}
	for _, g := range p.Grants {
		typ, action, _ := strings.Cut(g.Permission, ".")
		if action != "view" {
			continue
		}
		if _, done := a.visible[typ]; done {
			continue
		}
		if a.visible[typ], err = countVisible(ctx, e, tenant, principal, typ); err != nil {
			return access{}, err
		}
	}
	return a, nil
}

// countVisible pages through the visible query.
func countVisible(ctx context.Context, e *projections.Engine, tenant, principal, typ string) (int, error) {
	n, cursor := 0, ""
	for {
		ans, err := e.Visible(ctx, tenant, projections.VisibleQuery{Principal: principal, Type: typ,
			Action: "view", Limit: MaxHistoryLimit, Cursor: cursor})
		if err != nil {
			return 0, fmt.Errorf("replay: diff: count visible %s: %w", typ, err)
		}
		n += len(ans.IDs)
		if cursor = ans.NextCursor; cursor == "" {
			return n, nil
		}
	}
}

// sameGrant compares grants without their provenance: a role revoked and assigned again gives
// the same grant through other events.
func sameGrant(a, b aggregates.GrantUse) bool {
	return a.Permission == b.Permission && a.Scope == b.Scope && a.Source == b.Source &&
		a.NarrowedFrom == b.NarrowedFrom && a.Unscoped == b.Unscoped
}

// minus lists the grants of a that b lacks, in a's order.
func minus(a, b []aggregates.GrantUse) []aggregates.GrantUse {
	out := []aggregates.GrantUse{}
	for _, g := range a {
		if !slices.ContainsFunc(b, func(h aggregates.GrantUse) bool { return sameGrant(g, h) }) {
			out = append(out, g)
		}
	}
	return out
}

func counts(before, after map[string]int) []VisibleCount {
	var types []string
	for t := range before {
		types = append(types, t)
	}
	for t := range after {
		types = append(types, t)
	}
	slices.Sort(types)
	out := []VisibleCount{}
	for _, t := range slices.Compact(types) {
		out = append(out, VisibleCount{Type: t, From: before[t], To: after[t]})
	}
	return out
}

// waitModel waits, up to the service's bound, until the live read model has applied seq.
func (s *Service) waitModel(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	_, err := s.asOfSeq(ctx, Moment{Seq: seq})
	return err
}
