package aggregatestest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Random makes random commands for a tenant created with preset trackops and administrator
// Admin, over small pools of ids so that commands meet the same principals and records again.
// Tests that compare two readings of the same history (replay's oracles, acld's schema test)
// drive it.
type Random struct {
	rnd *rand.Rand
}

// Admin is the administrator the commands are issued by.
const Admin = "admin"

// The pools of ids the commands draw from.
var (
	Principals = []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	Types      = []string{"case", "invoice", "client", "expense"}
	IDs        = []string{"r0", "r1", "r2", "r3"}
	Clients    = []string{"r0", "r1"} // clients are records of type client: ids from the same pool
	Units      = []events.UnitRef{{Kind: "location", ID: "east"}, {Kind: "location", ID: "west"}, {Kind: "team", ID: "t1"}}
	Relations  = []string{"assignee", "salesperson"}
)

// NewRandom returns a generator; the same seed makes the same commands from the same states.
func NewRandom(seed uint64) *Random {
	return &Random{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Setup are the commands that define Units, to issue as Admin after CreateTenant.
func Setup() []aggregates.Command {
	var cmds []aggregates.Command
	for _, u := range Units {
		cmds = append(cmds, &aggregates.DefineUnit{Unit: u})
	}
	return cmds
}

func pickOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (h *Random) subset(units []events.UnitRef) []events.UnitRef {
	var out []events.UnitRef
	for _, u := range units {
		if h.rnd.IntN(3) == 0 {
			out = append(out, u)
		}
	}
	return out
}

func (h *Random) body(typ, id string) events.RecordBody {
	r := h.rnd
	b := events.RecordBody{Type: typ, ID: id, Units: h.subset(Units)}
	if r.IntN(2) == 0 {
		b.Client = pickOf(r, Clients)
	}
	if r.IntN(3) == 0 {
		b.Owner = pickOf(r, Principals)
	}
	for range r.IntN(3) {
		b.Assignees = append(b.Assignees, events.Assignee{Principal: pickOf(r, Principals), Relation: pickOf(r, Relations)})
	}
	if typ == "invoice" && r.IntN(2) == 0 {
		b.Links = []events.RecordRef{{Type: "case", ID: pickOf(r, IDs)}}
	}
	return b
}

// Command makes one random command for tenant state t, issued by actor Admin. Decide may
// reject it (a principal not registered, a role not held): skip those.
func (h *Random) Command(t *aggregates.Tenant) (actor string, cmd aggregates.Command) {
	r := h.rnd
	roles := slices.Sorted(maps.Keys(t.Roles))
	perm := pickOf(r, t.Policy.Permissions)
	p := pickOf(r, Principals)
	typ, id := pickOf(r, Types), pickOf(r, IDs)
	switch r.IntN(20) {
	case 0, 1:
		kind := pickOf(r, aggregates.Kinds)
		c := &aggregates.RegisterPrincipal{Principal: p, Kind: kind, Email: p + "@x.test", Units: h.subset(Units)}
		if kind == aggregates.KindClientContact {
			c.Client = pickOf(r, Clients)
		}
		return Admin, c
	case 2, 3:
		return Admin, &aggregates.AssignRole{Principal: p, Role: pickOf(r, roles)}
	case 4:
		return Admin, &aggregates.RevokeRole{Principal: p, Role: pickOf(r, roles)}
	case 5, 6:
		return Admin, &aggregates.SetAccessLevel{Principal: p, Level: pickOf(r, aggregates.Levels)}
	case 7:
		return Admin, &aggregates.GrantPermission{Principal: p, Permission: perm, Scope: pickOf(r, aggregates.Scopes)}
	case 8:
		if r.IntN(2) == 0 {
			return Admin, &aggregates.DenyPermission{Principal: p, Permission: perm}
		}
		return Admin, &aggregates.ClearPermission{Principal: p, Permission: perm}
	case 9:
		if r.IntN(2) == 0 {
			return Admin, &aggregates.JoinUnit{Principal: p, Unit: pickOf(r, Units)}
		}
		return Admin, &aggregates.LeaveUnit{Principal: p, Unit: pickOf(r, Units)}
	case 10, 11:
		return Admin, &aggregates.RegisterRecord{RecordBody: h.body(typ, id)}
	case 12:
		return Admin, &aggregates.UpdateRecord{RecordBody: h.body(typ, id)}
	case 13, 14:
		return Admin, &aggregates.AssignRecord{Type: typ, ID: id, Principal: p, Relation: pickOf(r, Relations)}
	case 15:
		return Admin, &aggregates.UnassignRecord{Type: typ, ID: id, Principal: p, Relation: pickOf(r, Relations)}
	case 16:
		role := pickOf(r, roles)
		if r.IntN(2) == 0 {
			return Admin, &aggregates.GrantRolePermission{Role: role, Permission: perm, Scope: pickOf(r, aggregates.Scopes)}
		}
		if rr := t.Roles[role]; rr != nil && len(rr.Def.Grants) > 0 {
			g := pickOf(r, rr.Def.Grants)
			return Admin, &aggregates.RevokeRolePermission{Role: role, Permission: g.Permission, Scope: g.Scope}
		}
		return Admin, &aggregates.RevokeRolePermission{Role: role, Permission: perm, Scope: aggregates.ScopeAll}
	case 17:
		if r.IntN(4) == 0 {
			return Admin, &aggregates.RemoveRecord{Type: typ, ID: id}
		}
		if r.IntN(4) == 0 {
			return Admin, &aggregates.RemovePrincipal{Principal: p}
		}
		return Admin, &aggregates.AssignRecord{Type: typ, ID: id, Principal: p}
	case 18:
		pol := t.Policy
		pol.Links = nil
		if r.IntN(2) == 0 {
			pol.Links = []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{pickOf(r, aggregates.Kinds)}}}
		}
		return Admin, &aggregates.SetPolicy{Policy: &pol}
	default:
		role := pickOf(r, roles)
		return Admin, &aggregates.DefineRole{Role: fmt.Sprintf("%s_%d", role, r.IntN(3)),
			Grants: []events.Grant{{Permission: perm, Scope: pickOf(r, aggregates.Scopes)}}}
	}
}
