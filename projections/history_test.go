package projections

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// A random history of events, as the command service could write them (valid ids, units defined
// before use), for differential, crash and benchmark tests. Each item is one stream message: the
// events of one command for one aggregate.

var (
	genTypes   = []string{"case", "invoice", "client", "user", "employee", "client_contact", "team", "location", "area"}
	genActions = []string{"view", "edit"}
	genKinds   = []string{aggregates.KindStaff, aggregates.KindClientContact, aggregates.KindEmployee}
	genLevels  = []string{aggregates.LevelFull, aggregates.LevelFullLocation, aggregates.LevelLimited, aggregates.LevelDisabled}
	genRels    = []string{"assignee", "salesperson"}
	recTypes   = []string{"case", "invoice", "client"}
)

type item struct {
	subject string
	envs    []events.Envelope
}

type genTenant struct {
	id         string
	principals []string
	kinds      map[string]string
	records    map[string][]string // type -> ids
	units      []events.UnitRef
	roles      []string
	n          int
}

type generator struct {
	rng     *rand.Rand
	tenants []*genTenant
	items   []item
	clock   time.Time
}

func newGenerator(seed uint64, tenants ...string) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, id := range tenants {
		gt := &genTenant{id: id, kinds: map[string]string{}, records: map[string][]string{}}
		g.tenants = append(g.tenants, gt)
		g.create(gt)
	}
	return g
}

func (g *generator) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *generator) emit(t *genTenant, agg events.AggregateRef, ds ...events.Data) {
	subject, err := events.Subject(t.id, agg)
	if err != nil {
		panic(err)
	}
	g.clock = g.clock.Add(time.Second)
	cmd := fmt.Sprintf("cmd-%d", len(g.items))
	var envs []events.Envelope
	for _, d := range ds {
		e, err := events.New(events.Meta{Tenant: t.id, Aggregate: agg, Actor: "system", CommandID: cmd, Time: g.clock}, d)
		if err != nil {
			panic(err)
		}
		envs = append(envs, e)
	}
	g.items = append(g.items, item{subject: subject, envs: envs})
}

func genPolicy() events.Policy {
	pol := events.Policy{Permissions: []string{"report.view", aggregates.SessionLogin, aggregates.ManageAccess}}
	for _, typ := range genTypes {
		for _, a := range genActions {
			pol.Permissions = append(pol.Permissions, typ+"."+a)
		}
	}
	slices.Sort(pol.Permissions)
	pol.Unscoped = []string{"report.view"}
	pol.Limited = []events.LimitedException{{Permission: "client.view", Kinds: []string{aggregates.KindStaff}}}
	pol.Links = []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{aggregates.KindStaff}}}
	pol.Implies = []events.Implication{{Permission: "invoice.view", Field: "client", Grants: "client.view"}}
	return pol
}

func (g *generator) randomRole(id string, pol events.Policy) events.RoleDef {
	r := events.RoleDef{Role: id, PrincipalKinds: genKinds}
	for range 1 + g.rng.IntN(6) {
		r.Grants = append(r.Grants, events.Grant{Permission: g.pick(pol.Permissions), Scope: g.pick(aggregates.Scopes)})
	}
	// The permissions that the link and implication rules are about, more often than chance.
	for _, perm := range []string{"invoice.view", "case.view"} {
		if g.rng.IntN(2) == 0 {
			r.Grants = append(r.Grants, events.Grant{Permission: perm, Scope: g.pick(aggregates.Scopes)})
		}
	}
	if g.rng.IntN(6) == 0 {
		r.RequiresFeature = "f1"
	}
	return r
}

func (g *generator) create(t *genTenant) {
	pol := genPolicy()
	tc := events.TenantCreatedV1{Preset: "empty", AdminRole: "administrator", Policy: pol,
		Roles: []events.RoleDef{{Role: "administrator", PrincipalKinds: genKinds}}}
	t.roles = []string{"administrator"}
	for i := range 5 {
		id := fmt.Sprintf("role%d", i)
		tc.Roles = append(tc.Roles, g.randomRole(id, pol))
		t.roles = append(t.roles, id)
	}
	// A role that sees every invoice and no client: what the implication (TO-4f) is for.
	tc.Roles = append(tc.Roles, events.RoleDef{Role: "invoicer", PrincipalKinds: genKinds, Grants: []events.Grant{
		{Permission: "invoice.view", Scope: aggregates.ScopeAll}, {Permission: "case.view", Scope: aggregates.ScopeAssigned}}})
	t.roles = append(t.roles, "invoicer")
	g.emit(t, events.TenantRef(t.id), tc)
	for _, kind := range aggregates.UnitKinds {
		for i := range 3 {
			u := events.UnitRef{Kind: kind, ID: fmt.Sprintf("%s%d", kind[:1], i)}
			t.units = append(t.units, u)
			g.emit(t, events.TenantRef(t.id), events.UnitDefinedV1{Unit: u})
		}
	}
}

func (g *generator) someUnits() []events.UnitRef {
	var out []events.UnitRef
	for _, u := range g.tenants[0].units { // every tenant defines the same unit ids
		if g.rng.IntN(5) == 0 {
			out = append(out, u)
		}
	}
	return out
}

func (g *generator) clientID() string { return fmt.Sprintf("cl%d", g.rng.IntN(8)) }

// step appends one random command's events.
func (g *generator) step() {
	t := g.tenants[g.rng.IntN(len(g.tenants))]
	t.n++
	switch x := g.rng.IntN(100); {
	case x < 12 || len(t.principals) < 3:
		g.register(t)
	case x < 35 || len(t.records["case"]) < 2:
		g.registerRecord(t)
	case x < 45:
		g.principalChange(t)
	case x < 55:
		p := g.pick(t.principals)
		lvl := g.pick(genLevels)
		g.emit(t, events.PrincipalRef(p), events.AccessLevelSetV1{Level: lvl})
		g.emit(t, events.TenantRef(t.id), events.SeatChangedV1{Principal: p, To: lvl})
	case x < 62:
		g.emit(t, events.PrincipalRef(g.pick(t.principals)), events.RoleAssignedV1{Role: g.pick(t.roles)})
	case x < 78:
		g.recordChange(t)
	case x < 82:
		g.tenantChange(t)
	default:
		g.registerRecord(t)
	}
}

func (g *generator) register(t *genTenant) {
	id := fmt.Sprintf("p%d", len(t.principals))
	kind := g.pick(genKinds)
	d := events.PrincipalRegisteredV1{Principal: id, Kind: kind, Email: id + "@x.test", Units: g.someUnits()}
	if kind == aggregates.KindClientContact {
		d.Client = g.clientID()
	}
	t.principals = append(t.principals, id)
	t.kinds[id] = kind
	g.emit(t, events.PrincipalRef(id), d)
	lvl := g.pick(genLevels[:3])
	g.emit(t, events.PrincipalRef(id), events.AccessLevelSetV1{Level: lvl, From: aggregates.LevelDisabled},
		events.RoleAssignedV1{Role: g.pick(t.roles)})
	g.emit(t, events.TenantRef(t.id), events.SeatChangedV1{Principal: id, From: aggregates.LevelDisabled, To: lvl})
}

func (g *generator) principalChange(t *genTenant) {
	p := g.pick(t.principals)
	ref := events.PrincipalRef(p)
	pol := genPolicy()
	switch g.rng.IntN(8) {
	case 0:
		g.emit(t, ref, events.RoleRevokedV1{Role: g.pick(t.roles)})
	case 1:
		g.emit(t, ref, events.PermissionGrantedV1{Grant: events.Grant{Permission: g.pick(pol.Permissions), Scope: g.pick(aggregates.Scopes)}})
	case 2:
		g.emit(t, ref, events.PermissionDeniedV1{Permission: g.pick(pol.Permissions)})
	case 3:
		g.emit(t, ref, events.PermissionClearedV1{Permission: g.pick(pol.Permissions)})
	case 4:
		g.emit(t, ref, events.UnitJoinedV1{Unit: t.units[g.rng.IntN(len(t.units))]})
	case 5:
		g.emit(t, ref, events.UnitLeftV1{Unit: t.units[g.rng.IntN(len(t.units))]})
	case 6:
		if g.rng.IntN(4) == 0 {
			g.emit(t, ref, events.PrincipalRemovedV1{})
			g.emit(t, events.TenantRef(t.id), events.SeatChangedV1{Principal: p})
		}
	default:
		g.emit(t, ref, events.EmailSetV1{Email: p + "@y.test"})
	}
}

func (g *generator) body(t *genTenant, typ, id string) events.RecordBody {
	b := events.RecordBody{Type: typ, ID: id, Units: g.someUnits()}
	if g.rng.IntN(5) > 0 {
		b.Client = g.clientID()
	}
	if g.rng.IntN(2) == 0 {
		b.Owner = g.pick(t.principals)
	}
	for range g.rng.IntN(3) {
		b.Assignees = append(b.Assignees, events.Assignee{Principal: g.pick(t.principals), Relation: g.pick(genRels)})
	}
	if typ == "invoice" {
		for range g.rng.IntN(3) {
			b.Links = append(b.Links, events.RecordRef{Type: "case", ID: fmt.Sprintf("case%d", g.rng.IntN(len(t.records["case"])+2))})
		}
	}
	return b
}

func (g *generator) registerRecord(t *genTenant) {
	typ := g.pick(recTypes)
	id := fmt.Sprintf("%s%d", typ, len(t.records[typ]))
	if typ == "client" {
		if len(t.records[typ]) >= 12 {
			typ, id = "case", fmt.Sprintf("case%d", len(t.records["case"]))
		} else {
			id = fmt.Sprintf("cl%d", len(t.records[typ]))
		}
	}
	t.records[typ] = append(t.records[typ], id)
	g.emit(t, events.RecordAggregate(typ, id), events.RecordRegisteredV1{RecordBody: g.body(t, typ, id)})
}

func (g *generator) recordChange(t *genTenant) {
	typ := g.pick(recTypes)
	if len(t.records[typ]) == 0 {
		g.registerRecord(t)
		return
	}
	id := g.pick(t.records[typ])
	ref := events.RecordAggregate(typ, id)
	switch g.rng.IntN(10) {
	case 0, 1:
		g.emit(t, ref, events.RecordUpdatedV1{RecordBody: g.body(t, typ, id)})
	case 2, 3, 4, 5:
		g.emit(t, ref, events.RecordAssignedV2{Principal: g.pick(t.principals), Relation: g.pick(genRels)})
	case 6, 7:
		g.emit(t, ref, events.RecordUnassignedV2{Principal: g.pick(t.principals), Relation: g.pick(genRels)})
	default:
		if g.rng.IntN(3) == 0 {
			g.emit(t, ref, events.RecordRemovedV1{})
		}
	}
}

func (g *generator) tenantChange(t *genTenant) {
	ref := events.TenantRef(t.id)
	pol := genPolicy()
	role := g.pick(t.roles[1:])
	switch g.rng.IntN(5) {
	case 0:
		g.emit(t, ref, events.RolePermissionGrantedV1{Role: role, Grant: events.Grant{Permission: g.pick(pol.Permissions), Scope: g.pick(aggregates.Scopes)}})
	case 1:
		g.emit(t, ref, events.RolePermissionRevokedV1{Role: role, Grant: events.Grant{Permission: g.pick(pol.Permissions), Scope: g.pick(aggregates.Scopes)}})
	case 2:
		g.emit(t, ref, events.RoleDefinedV1{RoleDef: g.randomRole(role, pol)})
	case 3:
		feats := []string{}
		if g.rng.IntN(2) == 0 {
			feats = append(feats, "f1")
		}
		g.emit(t, ref, events.SubscriptionSetV1{Features: feats, Seats: map[string]int{}})
	default:
		if g.rng.IntN(3) == 0 {
			pol.Links = nil
		}
		g.emit(t, ref, events.PolicySetV1{Policy: pol})
	}
}

// messages numbers the items 1..n as the stream would.
func messages(items []item) []events.Message {
	out := make([]events.Message, len(items))
	for i, it := range items {
		seq := uint64(i + 1)
		envs := slices.Clone(it.envs)
		for j := range envs {
			envs[j].Seq = seq
		}
		out[i] = events.Message{Seq: seq, Subject: it.subject, Events: envs}
	}
	return out
}

// appender writes items to the store, one message each, with each subject's expected last
// sequence as the command service would.
type appender struct {
	st   *events.Store
	last map[string]uint64
}

func newAppender(st *events.Store) *appender {
	return &appender{st: st, last: map[string]uint64{}}
}

// add appends items and returns them as stored.
func (ap *appender) add(t testing.TB, items []item) []events.Message {
	t.Helper()
	ctx := context.Background()
	out := make([]events.Message, 0, len(items))
	last := ap.last
	for _, it := range items {
		a, err := ap.st.Append(ctx, it.subject, last[it.subject], "", it.envs)
		if err != nil {
			t.Fatalf("append %s: %v", it.subject, err)
		}
		last[it.subject] = a.Seq
		envs := slices.Clone(it.envs)
		for j := range envs {
			envs[j].Seq = a.Seq
		}
		out = append(out, events.Message{Seq: a.Seq, Subject: it.subject, Events: envs})
	}
	return out
}

// world folds messages into the oracle.
func world(t testing.TB, msgs []events.Message) aggregates.World {
	t.Helper()
	w := aggregates.World{}
	for _, m := range msgs {
		for _, e := range m.Events {
			if err := w.Apply(e); err != nil {
				t.Fatalf("oracle apply %s: %v", e.Type, err)
			}
		}
	}
	return w
}
