package projections

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestDifferential runs a random history of several tenants through the stream and the
// projector, then asks the engine every check, visible listing (page by page) and count,
// principals,
// recipients and permissions question the history allows, and compares each answer with the
// pure evaluator over an aggregates.World built from the same events.
func TestDifferential(t *testing.T) {
	steps := 1500
	if testing.Short() {
		steps = 400
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			env := eventstest.Start(t)
			g := newGenerator(seed, "acme", "beta", "gamma")
			for range steps {
				g.step()
			}
			msgs := newAppender(env.Store).add(t, g.items)
			nev := 0
			for _, m := range msgs {
				nev += len(m.Events)
			}
			t.Logf("%d events in %d messages", nev, len(msgs))
			db := openDB(t)
			proj := runProjector(t, db, env.Store)
			waitApplied(t, proj, msgs[len(msgs)-1].Seq)
			eng := NewEngine(db, proj, EngineOptions{})
			w := world(t, msgs)
			for _, tenant := range slices.Sorted(maps.Keys(w)) {
				d := &diff{t: t, eng: eng, tenant: tenant, m: w[tenant], seed: seed}
				d.checks()
				d.visible()
				d.principals()
				d.permissions()
				t.Logf("tenant %s: %d principals, %d records, %d comparisons", tenant,
					len(d.m.Principals), len(d.m.Records), d.n)
			}
		})
	}
}

type diff struct {
	t      *testing.T
	eng    *Engine
	tenant string
	m      *aggregates.Memory
	seed   uint64
	n      int
}

func (d *diff) principalIDs() []string {
	return append(slices.Sorted(maps.Keys(d.m.Principals)), "nobody")
}

// records lists every record the oracle knows (principals and units too), plus a missing one.
func (d *diff) records() []events.RecordRef {
	var out []events.RecordRef
	for k := range d.m.Records {
		out = append(out, k)
	}
	for id, p := range d.m.Principals {
		out = append(out, events.RecordRef{Type: aggregates.PrincipalRecordType(p.Kind), ID: id})
	}
	for k := range d.m.T.Units {
		kind, id, _ := cutUnit(k)
		out = append(out, events.RecordRef{Type: kind, ID: id})
	}
	out = append(out, events.RecordRef{Type: "case", ID: "missing"})
	slices.SortFunc(out, func(a, b events.RecordRef) int {
		if c := compare(a.Type, b.Type); c != 0 {
			return c
		}
		return compare(a.ID, b.ID)
	})
	return out
}

func cutUnit(k string) (string, string, bool) {
	i := slices.Index([]byte(k), ':')
	if i < 0 {
		return "", "", false
	}
	return k[:i], k[i+1:], true
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (d *diff) checks() {
	ctx := context.Background()
	recs := d.records()
	for _, p := range d.principalIDs() {
		for i, r := range recs {
			// Each record's own actions, one other type's permission, and manage_access.
			perms := []string{r.Type + ".view", r.Type + ".edit"}
			if i%7 == 0 {
				perms = append(perms, "invoice.view", aggregates.ManageAccess, "nosuch.view")
			}
			for _, perm := range perms {
				d.check(ctx, p, perm, &r)
			}
		}
		for _, perm := range d.m.T.Policy.Permissions {
			d.check(ctx, p, perm, nil)
		}
	}
}

func (d *diff) check(ctx context.Context, p, perm string, r *events.RecordRef) {
	d.n++
	want, werr := aggregates.Check(d.m, p, perm, r)
	got, gerr := d.eng.Check(ctx, d.tenant, CheckQuery{Principal: p, Permission: perm, Record: r})
	if codeOf(werr) != codeOf(gerr) {
		d.t.Fatalf("check %s %s %v: error %v, oracle %v", p, perm, r, gerr, werr)
	}
	if werr != nil {
		return
	}
	gotD := aggregates.Decision{Allowed: got.Allowed, Reason: got.Reason, Grants: got.Grants, Events: got.Events}
	want.Grants, want.Events = nonNil(want.Grants), nonNil(want.Events)
	if !reflect.DeepEqual(gotD, want) {
		d.t.Fatalf("check %s %s %v:\n got %+v\nwant %+v", p, perm, r, gotD, want)
	}
}

func (d *diff) visible() {
	ctx := context.Background()
	memo := NewCountMemo() // one moment: shared by every principal, as a review's walk shares it
	for i, p := range d.principalIDs() {
		for _, typ := range append(genTypes, "nosuch") {
			want, werr := aggregates.Visible(d.m, p, typ, "view")
			n, gerr := d.eng.VisibleCount(ctx, d.tenant, p, typ, memo)
			d.n++
			if codeOf(werr) != codeOf(gerr) || (werr == nil && n != len(want)) {
				d.t.Fatalf("visible count %s %s: %d (error %v), oracle %d (error %v)", p, typ, n, gerr, len(want), werr)
			}
			for _, action := range genActions {
				want, werr := aggregates.Visible(d.m, p, typ, action)
				limit := 1 + (i+len(typ))%7
				got, gerr := d.pages(ctx, VisibleQuery{Principal: p, Type: typ, Action: action, Limit: limit})
				d.n++
				if codeOf(werr) != codeOf(gerr) {
					d.t.Fatalf("visible %s %s.%s: error %v, oracle %v", p, typ, action, gerr, werr)
				}
				if werr == nil && !slices.Equal(got, want) {
					d.t.Fatalf("visible %s %s.%s limit %d:\n got %v\nwant %v", p, typ, action, limit, got, want)
				}
			}
		}
	}
}

// pages reads every page of a listing, checking each page's size and cursor.
func (d *diff) pages(ctx context.Context, q VisibleQuery) ([]string, error) {
	var all []string
	for range 10_000 {
		a, err := d.eng.Visible(ctx, d.tenant, q)
		if err != nil {
			return nil, err
		}
		if a.IDs == nil || len(a.IDs) > q.Limit {
			d.t.Fatalf("visible %+v: page of %d ids (nil %v)", q, len(a.IDs), a.IDs == nil)
		}
		all = append(all, a.IDs...)
		if a.NextCursor == "" {
			return nonNil(all), nil
		}
		if len(a.IDs) != q.Limit || a.NextCursor != a.IDs[len(a.IDs)-1] {
			d.t.Fatalf("visible %+v: next cursor %q after a page of %d", q, a.NextCursor, len(a.IDs))
		}
		q.Cursor = a.NextCursor
	}
	d.t.Fatalf("visible %+v: pages never end", q)
	return nil, nil
}

func (d *diff) principals() {
	ctx := context.Background()
	for _, r := range d.records() {
		for _, perm := range []string{r.Type + ".view", r.Type + ".edit", aggregates.ManageAccess} {
			want, werr := aggregates.AllowedPrincipals(d.m, perm, r)
			got, gerr := d.eng.Principals(ctx, d.tenant, PrincipalsQuery{Record: r, Permission: perm})
			d.n++
			if codeOf(werr) != codeOf(gerr) {
				d.t.Fatalf("principals %v %s: error %v, oracle %v", r, perm, gerr, werr)
			}
			if werr == nil && !slices.Equal(got.Principals, want) {
				d.t.Fatalf("principals %v %s:\n got %v\nwant %v", r, perm, got.Principals, want)
			}
		}
		d.recipients(ctx, r)
	}
}

func (d *diff) recipients(ctx context.Context, r events.RecordRef) {
	rec := d.m.Record(r.Type, r.ID)
	got, err := d.eng.Recipients(ctx, d.tenant, RecipientsQuery{Record: r})
	d.n++
	if !rec.Active() {
		if codeOf(err) != aggregates.CodeNotFound {
			d.t.Fatalf("recipients of missing %v: %v", r, err)
		}
		return
	}
	want := []string{}
	for _, id := range append([]string{rec.Owner}, assigneeIDs(rec)...) {
		if d.m.Principal(id).Active() && !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	if err != nil || !slices.Equal(got.Principals, want) {
		d.t.Fatalf("recipients %v: got %v (%v), want %v", r, got.Principals, err, want)
	}
}

func assigneeIDs(r *aggregates.Record) []string {
	var out []string
	for _, a := range r.Assignees {
		out = append(out, a.Principal)
	}
	return out
}

func (d *diff) permissions() {
	ctx := context.Background()
	for _, id := range d.principalIDs() {
		got, err := d.eng.Permissions(ctx, d.tenant, PermissionsQuery{Principal: id})
		d.n++
		p := d.m.Principal(id)
		if p == nil {
			if codeOf(err) != aggregates.CodeNotFound {
				d.t.Fatalf("permissions of unknown %s: %v", id, err)
			}
			continue
		}
		want := aggregates.NarrowedGrants(d.m.T, p, "")
		if err != nil || got.Kind != p.Kind || got.Level != p.Level || !reflect.DeepEqual(got.Grants, want) ||
			!slices.Equal(got.Roles, nonNil(p.Roles)) || !slices.Equal(got.Denied, nonNil(p.Denied)) {
			d.t.Fatalf("permissions %s: got %+v (%v), want grants %+v", id, got, err, want)
		}
	}
}
