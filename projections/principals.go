package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
)

// Principals answers who is allowed a permission on a record. Only a principal with a grant of
// the permission (or of a permission that implies it) can be allowed, so the candidates are
// the holders of the roles that give one and the holders of a direct grant of one (role and
// direct-grant indexes); each is then decided by aggregates.Check, as the oracle does for all.
func (e *Engine) Principals(ctx context.Context, tenant string, q PrincipalsQuery) (PrincipalsAnswer, error) {
	if err := validRecord("record", q.Record); err != nil {
		return PrincipalsAnswer{}, err
	}
	if err := validPermission(q.Permission); err != nil {
		return PrincipalsAnswer{}, err
	}
	v, err := e.view(tenant)
	if err != nil {
		return PrincipalsAnswer{}, err
	}
	defer v.close()
	if !v.t.KnowsPermission(q.Permission) {
		return PrincipalsAnswer{}, aggregates.Errorf(aggregates.CodeUnknownPermission,
			"permission %s is not in the policy of tenant %s", q.Permission, tenant)
	}
	rec := v.Record(q.Record.Type, q.Record.ID)
	if !rec.Active() {
		return PrincipalsAnswer{}, notFoundOr(v, "no record %s %s", q.Record.Type, q.Record.ID)
	}
	cands, err := v.candidates(q.Permission, e.opts.MaxCandidates)
	if err != nil {
		return PrincipalsAnswer{}, err
	}
	implies := impliesAny(v.t, q.Permission) && aggregates.IsClientRecordType(rec.Type)
	out := []string{}
	for i, id := range cands {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return PrincipalsAnswer{}, err
			}
		}
		ok, err := v.allowed(id, q.Permission, rec, implies)
		if err != nil {
			return PrincipalsAnswer{}, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return PrincipalsAnswer{Principals: out, Seq: v.seq}, nil
}

// allowed is aggregates.Check's answer without its explanation, which the principals query
// does not need: a narrowed grant of perm that covers rec (Check's rules 1 to 4: NarrowedGrants
// is empty for a removed or disabled principal and leaves out a denied permission). Only when
// an implication could allow it (a client record, a rule granting perm) does it ask Check.
func (v *view) allowed(id, perm string, rec *aggregates.Record, implies bool) (bool, error) {
	p := v.Principal(id)
	if v.err != nil {
		return false, v.err
	}
	if p == nil || !aggregates.AppliesTo(perm, rec.Type) {
		return false, nil
	}
	if aggregates.AnyNarrowedScope(v.t, p, perm, func(scope string) bool { return aggregates.Covers(v, p, scope, rec) }) {
		return true, v.err
	}
	if !implies {
		return false, v.err
	}
	d, err := aggregates.Check(v, id, perm, &events.RecordRef{Type: rec.Type, ID: rec.ID})
	if v.err != nil {
		return false, v.err
	}
	return d.Allowed, err
}

// impliesAny reports whether an implication rule of the policy grants perm.
func impliesAny(t *aggregates.Tenant, perm string) bool {
	for _, rule := range t.Policy.Implies {
		if rule.Grants == perm {
			return true
		}
	}
	return false
}

// candidates lists, ascending and unique, the principals holding perm or a permission that
// implies it, through a role or a direct grant.
func (v *view) candidates(perm string, max int) ([]string, error) {
	perms := []string{perm}
	for _, rule := range v.t.Policy.Implies {
		if rule.Grants == perm && !slices.Contains(perms, rule.Permission) {
			perms = append(perms, rule.Permission)
		}
	}
	var prefixes [][]byte
	for id, role := range v.t.Roles {
		if givesAny(v.t, id, role, perms) {
			prefixes = append(prefixes, key(nil, v.tenant, string(tagRole), id))
		}
	}
	for _, p := range perms {
		prefixes = append(prefixes, key(nil, v.tenant, string(tagDirect), p))
	}
	var out []string
	for _, prefix := range prefixes {
		err := v.scan(prefix, nil, func(k, _ []byte) bool {
			out = append(out, string(k[len(prefix):len(k)-1]))
			return len(out) <= max
		})
		if err != nil {
			return nil, err
		}
		if len(out) > max {
			return nil, aggregates.Errorf(aggregates.CodeInvalidArgument,
				"more than %d principals hold %s; ask check for each instead", max, perm)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// givesAny reports whether role id gives any of perms (at any scope): the tenant's
// administrator role gives every permission of the policy.
func givesAny(t *aggregates.Tenant, id string, role *aggregates.Role, perms []string) bool {
	for _, p := range perms {
		if id == t.AdminRole && t.KnowsPermission(p) {
			return true
		}
		for _, g := range role.Def.Grants {
			if g.Permission == p {
				return true
			}
		}
	}
	return false
}

// Recipients answers who is notified about a record: its owner and assignees that are
// registered and not removed, whatever their access level (TO-5).
func (e *Engine) Recipients(ctx context.Context, tenant string, q RecipientsQuery) (PrincipalsAnswer, error) {
	if err := validRecord("record", q.Record); err != nil {
		return PrincipalsAnswer{}, err
	}
	v, err := e.view(tenant)
	if err != nil {
		return PrincipalsAnswer{}, err
	}
	defer v.close()
	r := v.Record(q.Record.Type, q.Record.ID)
	if !r.Active() {
		return PrincipalsAnswer{}, notFoundOr(v, "no record %s %s", q.Record.Type, q.Record.ID)
	}
	ids := make([]string, 0, 1+len(r.Assignees))
	if r.Owner != "" {
		ids = append(ids, r.Owner)
	}
	for _, a := range r.Assignees {
		ids = append(ids, a.Principal)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := []string{}
	for _, id := range ids {
		if v.Principal(id).Active() {
			out = append(out, id)
		}
	}
	if v.err != nil {
		return PrincipalsAnswer{}, v.err
	}
	return PrincipalsAnswer{Principals: out, Seq: v.seq}, nil
}

// notFoundOr answers the view's read error if there was one, else not_found.
func notFoundOr(v *view, format string, args ...any) error {
	if v.err != nil {
		return v.err
	}
	return aggregates.Errorf(aggregates.CodeNotFound, format, args...)
}

// scan calls fn with each key and value under prefix from start (nil: the first), until fn
// returns false. The slices are valid during the call only.
func (v *view) scan(prefix, start []byte, fn func(k, val []byte) bool) error {
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("projections: scan: %w", err)
	}
	defer it.Close()
	ok := it.First()
	if start != nil {
		ok = it.SeekGE(start)
	}
	for ; ok; ok = it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("projections: scan %q: %w", prefix, err)
	}
	return nil
}
