package projections

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TenantQuery and its answer live in aggregates with the other query bodies.
type (
	TenantQuery  = aggregates.TenantQuery
	TenantAnswer = aggregates.TenantAnswer
)

// Tenant answers the tenant query: the tenant's definitions from its state, the record counts
// from the index of active records (one pass over it: the cost grows with the tenant's
// records), and a page of principals from the principal table, from the cursor on.
func (e *Engine) Tenant(ctx context.Context, tenant string, q TenantQuery) (TenantAnswer, error) {
	limit := q.Limit
	switch {
	case limit < 0 || limit > e.opts.MaxLimit:
		return TenantAnswer{}, invalid("limit %d: want 1 to %d (0 means %d)", limit, e.opts.MaxLimit, e.opts.DefaultLimit)
	case limit == 0:
		limit = e.opts.DefaultLimit
	}
	if q.Cursor != "" {
		if err := validID("cursor", q.Cursor); err != nil {
			return TenantAnswer{}, err
		}
	}
	if len(q.Search) > 254 {
		return TenantAnswer{}, invalid("search of %d characters: at most 254", len(q.Search))
	}
	v, err := e.view(tenant)
	if err != nil {
		return TenantAnswer{}, err
	}
	defer v.close()
	a := TenantAnswer{Preset: v.t.Preset, Features: append([]string{}, v.t.Features...), Roles: []events.RoleDef{},
		Units: []events.UnitRef{}, Seq: v.seq}
	for _, id := range slices.Sorted(maps.Keys(v.t.Roles)) {
		def := v.t.Roles[id].Def // a list in an answer is [], never null
		if def.Grants == nil {
			def.Grants = []events.Grant{}
		}
		if def.PrincipalKinds == nil {
			def.PrincipalKinds = []string{}
		}
		a.Roles = append(a.Roles, def)
	}
	for _, k := range slices.Sorted(maps.Keys(v.t.Units)) {
		kind, id, _ := strings.Cut(k, ":")
		a.Units = append(a.Units, events.UnitRef{Kind: kind, ID: id})
	}
	if a.Types, err = v.typeCounts(ctx); err != nil {
		return TenantAnswer{}, err
	}
	if a.Principals, a.NextCursor, err = v.principalPage(q.Search, q.Cursor, limit); err != nil {
		return TenantAnswer{}, err
	}
	return a, nil
}

// typeCounts counts the active records of each type.
func (v *view) typeCounts(ctx context.Context) ([]aggregates.TypeCount, error) {
	out := []aggregates.TypeCount{}
	prefix := key(nil, v.tenant, string(tagAll))
	n := 0
	err := v.scan(prefix, nil, func(k, _ []byte) bool {
		typ, _, _ := bytes.Cut(k[len(prefix):], []byte{sep})
		if len(out) == 0 || out[len(out)-1].Type != string(typ) {
			out = append(out, aggregates.TypeCount{Type: string(typ)})
		}
		out[len(out)-1].Count++
		n++
		return n%4096 != 0 || ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

// principalPage lists up to limit principals after cursor that match search, and the cursor of
// the next page ("" at the end).
func (v *view) principalPage(search, cursor string, limit int) ([]aggregates.PrincipalSummary, string, error) {
	out := []aggregates.PrincipalSummary{}
	prefix := key(nil, v.tenant, string(tagPrincipal))
	var start []byte
	if cursor != "" {
		start = key(slices.Clone(prefix), cursor+"\x00") // just after the cursor's key
	}
	search = strings.ToLower(search)
	next := ""
	var derr error
	err := v.scan(prefix, start, func(k, val []byte) bool {
		id, _, _ := bytes.Cut(k[len(prefix):], []byte{sep})
		if search != "" && !strings.HasPrefix(strings.ToLower(string(id)), search) && v.principalEmailLacks(val, search, &derr) {
			return derr == nil
		}
		if len(out) == limit {
			next = out[len(out)-1].Principal
			return false
		}
		p, err := decodePrincipal(val)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, aggregates.PrincipalSummary{Principal: p.ID, Kind: p.Kind, Level: p.Level, Email: p.Email,
			Client: p.Client, Roles: append([]string{}, p.Roles...), Removed: p.Removed})
		return true
	})
	if err == nil {
		err = derr
	}
	return out, next, err
}

// principalEmailLacks reports whether the principal stored in val has no email containing
// search (lower case); a decoding error is kept in derr.
func (v *view) principalEmailLacks(val []byte, search string, derr *error) bool {
	p, err := decodePrincipal(val)
	if err != nil {
		*derr = err
		return true
	}
	return !strings.Contains(strings.ToLower(p.Email), search)
}

// PrincipalPage lists the ids of up to limit principals of tenant after cursor, ascending, and
// the cursor of the next page ("" at the end): the tenant query's page of principals without
// its record counts (a pass over every record) or the principals' states, for callers that
// walk every principal (the review).
func (e *Engine) PrincipalPage(ctx context.Context, tenant, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 || limit > e.opts.MaxLimit {
		return nil, "", invalid("limit %d: want 1 to %d", limit, e.opts.MaxLimit)
	}
	if cursor != "" {
		if err := validID("cursor", cursor); err != nil {
			return nil, "", err
		}
	}
	v, err := e.view(tenant)
	if err != nil {
		return nil, "", err
	}
	defer v.close()
	prefix := key(nil, v.tenant, string(tagPrincipal))
	var start []byte
	if cursor != "" {
		start = key(slices.Clone(prefix), cursor+"\x00") // just after the cursor's key
	}
	var out []string
	next := ""
	err = v.scan(prefix, start, func(k, _ []byte) bool {
		if len(out) == limit {
			next = out[len(out)-1]
			return false
		}
		id, _, _ := bytes.Cut(k[len(prefix):], []byte{sep})
		out = append(out, string(id))
		return true
	})
	if err == nil {
		err = ctx.Err()
	}
	return out, next, err
}
