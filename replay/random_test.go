package replay

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// randomHistory drives n random commands into tenant acme (preset trackops) as its administrator,
// over small pools of ids so that commands meet the same principals and records again. Commands
// that Decide rejects are skipped: what is stored is a history the product could have.
type randomHistory struct {
	d   *driver
	rnd *rand.Rand
}

var (
	rhPrincipals = []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	rhTypes      = []string{"case", "invoice", "client", "expense"}
	rhIDs        = []string{"r0", "r1", "r2", "r3"}
	rhClients    = []string{"r0", "r1"} // clients are records of type client: ids from the same pool
	rhUnits      = []events.UnitRef{{Kind: "location", ID: "east"}, {Kind: "location", ID: "west"}, {Kind: "team", ID: "t1"}}
	rhRelations  = []string{"assignee", "salesperson"}
)

func newRandomHistory(d *driver, seed uint64) *randomHistory {
	h := &randomHistory{d: d, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	d.tenant("acme", "trackops")
	for _, u := range rhUnits {
		d.must("acme", "admin", &aggregates.DefineUnit{Unit: u})
	}
	return h
}

func pickOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (h *randomHistory) subset(units []events.UnitRef) []events.UnitRef {
	var out []events.UnitRef
	for _, u := range units {
		if h.rnd.IntN(3) == 0 {
			out = append(out, u)
		}
	}
	return out
}

func (h *randomHistory) body(typ, id string) events.RecordBody {
	r := h.rnd
	b := events.RecordBody{Type: typ, ID: id, Units: h.subset(rhUnits)}
	if r.IntN(2) == 0 {
		b.Client = pickOf(r, rhClients)
	}
	if r.IntN(3) == 0 {
		b.Owner = pickOf(r, rhPrincipals)
	}
	for range r.IntN(3) {
		b.Assignees = append(b.Assignees, events.Assignee{Principal: pickOf(r, rhPrincipals), Relation: pickOf(r, rhRelations)})
	}
	if typ == "invoice" && r.IntN(2) == 0 {
		b.Links = []events.RecordRef{{Type: "case", ID: pickOf(r, rhIDs)}}
	}
	return b
}

// command makes one random command.
func (h *randomHistory) command() (actor string, cmd aggregates.Command) {
	r := h.rnd
	t := h.d.world["acme"].T
	roles := slices.Sorted(maps.Keys(t.Roles))
	perm := pickOf(r, t.Policy.Permissions)
	p := pickOf(r, rhPrincipals)
	typ, id := pickOf(r, rhTypes), pickOf(r, rhIDs)
	switch r.IntN(20) {
	case 0, 1:
		kind := pickOf(r, aggregates.Kinds)
		c := &aggregates.RegisterPrincipal{Principal: p, Kind: kind, Email: p + "@x.test", Units: h.subset(rhUnits)}
		if kind == aggregates.KindClientContact {
			c.Client = pickOf(r, rhClients)
		}
		return "admin", c
	case 2, 3:
		return "admin", &aggregates.AssignRole{Principal: p, Role: pickOf(r, roles)}
	case 4:
		return "admin", &aggregates.RevokeRole{Principal: p, Role: pickOf(r, roles)}
	case 5, 6:
		return "admin", &aggregates.SetAccessLevel{Principal: p, Level: pickOf(r, aggregates.Levels)}
	case 7:
		return "admin", &aggregates.GrantPermission{Principal: p, Permission: perm, Scope: pickOf(r, aggregates.Scopes)}
	case 8:
		if r.IntN(2) == 0 {
			return "admin", &aggregates.DenyPermission{Principal: p, Permission: perm}
		}
		return "admin", &aggregates.ClearPermission{Principal: p, Permission: perm}
	case 9:
		if r.IntN(2) == 0 {
			return "admin", &aggregates.JoinUnit{Principal: p, Unit: pickOf(r, rhUnits)}
		}
		return "admin", &aggregates.LeaveUnit{Principal: p, Unit: pickOf(r, rhUnits)}
	case 10, 11:
		return "admin", &aggregates.RegisterRecord{RecordBody: h.body(typ, id)}
	case 12:
		return "admin", &aggregates.UpdateRecord{RecordBody: h.body(typ, id)}
	case 13, 14:
		return "admin", &aggregates.AssignRecord{Type: typ, ID: id, Principal: p, Relation: pickOf(r, rhRelations)}
	case 15:
		return "admin", &aggregates.UnassignRecord{Type: typ, ID: id, Principal: p, Relation: pickOf(r, rhRelations)}
	case 16:
		role := pickOf(r, roles)
		if r.IntN(2) == 0 {
			return "admin", &aggregates.GrantRolePermission{Role: role, Permission: perm, Scope: pickOf(r, aggregates.Scopes)}
		}
		if rr := t.Roles[role]; rr != nil && len(rr.Def.Grants) > 0 {
			g := pickOf(r, rr.Def.Grants)
			return "admin", &aggregates.RevokeRolePermission{Role: role, Permission: g.Permission, Scope: g.Scope}
		}
		return "admin", &aggregates.RevokeRolePermission{Role: role, Permission: perm, Scope: aggregates.ScopeAll}
	case 17:
		if r.IntN(4) == 0 {
			return "admin", &aggregates.RemoveRecord{Type: typ, ID: id}
		}
		if r.IntN(4) == 0 {
			return "admin", &aggregates.RemovePrincipal{Principal: p}
		}
		return "admin", &aggregates.AssignRecord{Type: typ, ID: id, Principal: p}
	case 18:
		pol := t.Policy
		pol.Links = nil
		if r.IntN(2) == 0 {
			pol.Links = []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{pickOf(r, aggregates.Kinds)}}}
		}
		return "admin", &aggregates.SetPolicy{Policy: &pol}
	default:
		role := pickOf(r, roles)
		return "admin", &aggregates.DefineRole{Role: fmt.Sprintf("%s_%d", role, r.IntN(3)),
			Grants: []events.Grant{{Permission: perm, Scope: pickOf(r, aggregates.Scopes)}}}
	}
}

// run issues n commands; it returns how many were accepted.
func (h *randomHistory) run(n int) int {
	ok := 0
	for range n {
		actor, cmd := h.command()
		if _, err := h.d.try("acme", actor, cmd); err == nil {
			ok++
		}
	}
	return ok
}
