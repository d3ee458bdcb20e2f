package commands

import (
	"context"
	"fmt"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// facts are one command's view of a tenant for Decide, read lazily from the cache: the tenant,
// the actor, the target and whatever records the evaluator asks for. Each aggregate is read
// once per decision (memo), so the decision sees one state of it. A load that fails is
// remembered in err and answered as "does not exist"; the service then discards the decision
// and answers unavailable.
type facts struct {
	ctx    context.Context
	cache  *cache
	tenant string
	memo   []fact // a handful per decision: a slice is cheaper than a map to make and search
	first  [4]fact
	err    error
	// before, when set, runs before an aggregate is first read: the bulk path waits there for
	// its own appends to that aggregate to be answered, or gives the state its open atomic batch
	// left it in (ok).
	before func(events.AggregateRef) (st any, ok bool)
}

// fact is one aggregate state a decision read.
type fact struct {
	ref events.AggregateRef
	st  any
}

func newFacts(ctx context.Context, c *cache, tenant string) *facts {
	f := &facts{ctx: ctx, cache: c, tenant: tenant}
	f.memo = f.first[:0] // most decisions read no more: no allocation of their own
	return f
}

// pin makes the decision use st for ref (the state of an aggregate the command writes, read
// under its write lock).
func (f *facts) pin(ref events.AggregateRef, st any) {
	for i := range f.memo {
		if f.memo[i].ref == ref {
			f.memo[i].st = st
			return
		}
	}
	f.memo = append(f.memo, fact{ref: ref, st: st})
}

func (f *facts) get(ref events.AggregateRef) any {
	for i := range f.memo {
		if f.memo[i].ref == ref {
			return f.memo[i].st
		}
	}
	if f.before != nil {
		if st, ok := f.before(ref); ok {
			f.pin(ref, st)
			return st
		}
	}
	var st any
	e, err := f.cache.entry(f.tenant, ref)
	if err == nil {
		var s *snapshot
		if s, err = f.cache.fresh(f.ctx, e); err == nil {
			st = s.state
		}
	}
	if err != nil {
		st = newState(ref) // answered as "does not exist"; the decision is discarded
		if f.err == nil {
			f.err = fmt.Errorf("commands: read %v: %w", ref, err)
		}
	}
	f.pin(ref, st)
	return st
}

func (f *facts) Tenant() *aggregates.Tenant {
	return f.get(events.TenantRef(f.tenant)).(*aggregates.Tenant)
}

func (f *facts) Principal(id string) *aggregates.Principal {
	if !events.ValidToken(id) {
		return nil
	}
	p := f.get(events.PrincipalRef(id)).(*aggregates.Principal)
	if !p.Exists {
		return nil
	}
	return p
}

func (f *facts) Record(typ, id string) *aggregates.Record {
	if !events.ValidToken(typ) || !events.ValidToken(id) {
		return nil
	}
	switch {
	case aggregates.IsPrincipalRecordType(typ):
		p := f.Principal(id)
		if p == nil || aggregates.PrincipalRecordType(p.Kind) != typ {
			return nil
		}
		return aggregates.PrincipalAsRecord(p)
	case aggregates.IsUnitRecordType(typ):
		u := events.UnitRef{Kind: typ, ID: id}
		if ev, ok := f.Tenant().Units[aggregates.UnitKey(u)]; ok {
			return aggregates.UnitAsRecord(u, ev)
		}
		return nil
	}
	r := f.get(events.RecordAggregate(typ, id)).(*aggregates.Record)
	if !r.Exists {
		return nil
	}
	return r
}

// RecordsWithClient enumerates nothing: the command service keeps no index of records by
// client, so implication rules (which derive view permissions, TO-4f) never authorize a
// command. Commands need edit or manage permissions, held through grants.
func (f *facts) RecordsWithClient(typ, client string, fn func(*aggregates.Record) bool) {}

// RoleHolder implements aggregates.RoleHolders by reading every principal of the tenant from
// the store (all principal subjects of the tenant, one wildcard load): DeleteRole and
// DefineRole are rare, and the cache holds only the principals used lately.
func (f *facts) RoleHolder(role string) string {
	msgs, err := f.cache.store.Load(f.ctx, events.Prefix+"."+f.tenant+".principal.*", 0)
	if err != nil {
		if f.err == nil {
			f.err = fmt.Errorf("commands: read the principals of %s: %w", f.tenant, err)
		}
		return ""
	}
	states := map[string]*aggregates.Principal{}
	for _, m := range msgs {
		for _, env := range m.Events {
			p := states[env.Aggregate.ID]
			if p == nil {
				p = aggregates.NewPrincipal(env.Aggregate.ID)
				states[env.Aggregate.ID] = p
			}
			if err := applyEnvelope(p, env); err != nil && f.err == nil {
				f.err = err
			}
		}
	}
	var holders []string
	for id, p := range states {
		if p.Active() && slices.Contains(p.Roles, role) {
			holders = append(holders, id)
		}
	}
	if len(holders) == 0 {
		return ""
	}
	return slices.Min(holders)
}
