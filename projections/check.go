package projections

import (
	"context"
	"slices"

	"github.com/acl-es/acl/aggregates"
)

// Check answers the check query with the pure evaluator over one snapshot: the answer is
// aggregates.Check's by construction.
func (e *Engine) Check(ctx context.Context, tenant string, q CheckQuery) (CheckAnswer, error) {
	if err := validID("principal", q.Principal); err != nil {
		return CheckAnswer{}, err
	}
	if err := validPermission(q.Permission); err != nil {
		return CheckAnswer{}, err
	}
	if q.Record != nil {
		if err := validRecord("record", *q.Record); err != nil {
			return CheckAnswer{}, err
		}
	}
	v, err := e.view(tenant)
	if err != nil {
		return CheckAnswer{}, err
	}
	defer v.close()
	d, err := aggregates.Check(v, q.Principal, q.Permission, q.Record)
	if v.err != nil {
		return CheckAnswer{}, v.err
	}
	if err != nil {
		return CheckAnswer{}, err
	}
	return CheckAnswer{Allowed: d.Allowed, Seq: v.seq, Reason: d.Reason,
		Grants: nonNil(d.Grants), Events: nonNil(d.Events)}, nil
}

// Permissions answers what a principal may do.
func (e *Engine) Permissions(ctx context.Context, tenant string, q PermissionsQuery) (PermissionsAnswer, error) {
	if err := validID("principal", q.Principal); err != nil {
		return PermissionsAnswer{}, err
	}
	v, err := e.view(tenant)
	if err != nil {
		return PermissionsAnswer{}, err
	}
	defer v.close()
	p := v.Principal(q.Principal)
	if v.err != nil {
		return PermissionsAnswer{}, v.err
	}
	if p == nil || !p.Exists {
		return PermissionsAnswer{}, aggregates.Errorf(aggregates.CodeNotFound, "no principal %s in tenant %s", q.Principal, tenant)
	}
	return PermissionsAnswer{Kind: p.Kind, Level: p.Level, Roles: nonNil(slices.Clone(p.Roles)),
		Grants: aggregates.NarrowedGrants(v.t, p, ""), Denied: nonNil(slices.Clone(p.Denied)), Seq: v.seq}, nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
