package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// Apply folds one event into the tenant. It mutates t (aggregates are large and applied in
// order; callers that must keep the old state clone it first) and never fails: an event that is
// stored has already been decided.
func (t *Tenant) Apply(e events.Envelope, d events.Data) {
	switch v := d.(type) {
	case events.TenantCreatedV1:
		t.Exists, t.Preset, t.AdminRole, t.Policy = true, v.Preset, v.AdminRole, v.Policy
		t.PolicyEvent = e.ID
		t.Roles = map[string]*Role{}
		for _, r := range v.Roles {
			t.defineRole(r, e.ID)
		}
	case events.SubscriptionSetV1:
		t.Features = slices.Sorted(slices.Values(v.Features))
		t.Seats = map[string]int{}
		for k, n := range v.Seats {
			t.Seats[k] = n
		}
	case events.UnitDefinedV1:
		t.Units[UnitKey(v.Unit)] = e.ID
	case events.RoleDefinedV1:
		t.defineRole(v.RoleDef, e.ID)
	case events.RoleDeletedV1:
		delete(t.Roles, v.Role)
	case events.RolePermissionGrantedV1:
		if r := t.Roles[v.Role]; r != nil {
			r.Def.Grants = insertSorted(r.Def.Grants, v.Grant, grantLess)
			r.GrantEvents[GrantKey(v.Grant)] = e.ID
		}
	case events.RolePermissionRevokedV1:
		if r := t.Roles[v.Role]; r != nil {
			r.Def.Grants = removeSorted(r.Def.Grants, v.Grant, grantLess)
			delete(r.GrantEvents, GrantKey(v.Grant))
		}
	case events.PolicySetV1:
		t.Policy = v.Policy
		t.PolicyEvent = e.ID
	case events.SeatChangedV1:
		if v.To == "" || v.To == LevelDisabled {
			delete(t.SeatHolders, v.Principal)
		} else {
			t.SeatHolders[v.Principal] = v.To
		}
	}
	RememberCommand(&t.Commands, e)
	if e.Seq > t.Seq {
		t.Seq = e.Seq
	}
}

func (t *Tenant) defineRole(def events.RoleDef, eventID string) {
	def.Grants = slices.Clone(def.Grants)
	slices.SortFunc(def.Grants, grantLess)
	def.Grants = slices.Compact(def.Grants)
	r := &Role{Def: def, GrantEvents: map[string]string{}}
	for _, g := range def.Grants {
		r.GrantEvents[GrantKey(g)] = eventID
	}
	t.Roles[def.Role] = r
}

// Apply folds one event into the principal; see Tenant.Apply.
func (p *Principal) Apply(e events.Envelope, d events.Data) {
	switch v := d.(type) {
	case events.PrincipalRegisteredV1:
		p.Exists, p.Kind, p.Email, p.Client = true, v.Kind, v.Email, v.Client
		p.Units = sortedUnits(v.Units)
		p.Level = LevelDisabled
		p.Prov["registered"] = e.ID
		p.Prov["level"] = e.ID
		for _, u := range p.Units {
			p.Prov["unit:"+UnitKey(u)] = e.ID
		}
		if v.Email != "" {
			p.Prov["email"] = e.ID
		}
	case events.EmailSetV1:
		p.Email = v.Email
		p.Prov["email"] = e.ID
	case events.RoleAssignedV1:
		p.Roles = insertSorted(p.Roles, v.Role, strCmp)
		p.Prov["role:"+v.Role] = e.ID
	case events.RoleRevokedV1:
		p.Roles = removeSorted(p.Roles, v.Role, strCmp)
		delete(p.Prov, "role:"+v.Role)
	case events.AccessLevelSetV1:
		p.Level = v.Level
		p.Prov["level"] = e.ID
	case events.PermissionGrantedV1:
		p.Grants = insertSorted(p.Grants, v.Grant, grantLess)
		p.Prov["grant:"+GrantKey(v.Grant)] = e.ID
	case events.PermissionDeniedV1:
		p.Denied = insertSorted(p.Denied, v.Permission, strCmp)
		p.Prov["deny:"+v.Permission] = e.ID
	case events.PermissionClearedV1:
		p.Denied = removeSorted(p.Denied, v.Permission, strCmp)
		delete(p.Prov, "deny:"+v.Permission)
		p.Grants = slices.DeleteFunc(slices.Clone(p.Grants), func(g events.Grant) bool {
			if g.Permission == v.Permission {
				delete(p.Prov, "grant:"+GrantKey(g))
				return true
			}
			return false
		})
	case events.UnitJoinedV1:
		p.Units = insertSorted(p.Units, v.Unit, unitLess)
		p.Prov["unit:"+UnitKey(v.Unit)] = e.ID
	case events.UnitLeftV1:
		p.Units = removeSorted(p.Units, v.Unit, unitLess)
		delete(p.Prov, "unit:"+UnitKey(v.Unit))
	case events.PrincipalRemovedV1:
		p.Removed = true
		p.Level = LevelDisabled
		p.Prov["removed"] = e.ID
	}
	p.Commands.add(e)
	if e.Seq > p.Seq {
		p.Seq = e.Seq
	}
}

// Apply folds one event into the record; see Tenant.Apply.
func (r *Record) Apply(e events.Envelope, d events.Data) {
	switch v := d.(type) {
	case events.RecordRegisteredV1:
		r.Exists = true
		r.setBody(v.RecordBody, e.ID)
	case events.RecordUpdatedV1:
		r.setBody(v.RecordBody, e.ID)
	case events.RecordAssignedV2:
		a := events.Assignee{Principal: v.Principal, Relation: v.Relation}
		r.Assignees = insertSorted(r.Assignees, a, assigneeLess)
		r.Prov["assignee:"+a.Principal+"|"+a.Relation] = e.ID
	case events.RecordUnassignedV2:
		a := events.Assignee{Principal: v.Principal, Relation: v.Relation}
		r.Assignees = removeSorted(r.Assignees, a, assigneeLess)
		delete(r.Prov, "assignee:"+a.Principal+"|"+a.Relation)
	case events.RecordRemovedV1:
		r.Removed = true
		r.Prov["removed"] = e.ID
	}
	r.Commands.add(e)
	if e.Seq > r.Seq {
		r.Seq = e.Seq
	}
}

func (r *Record) setBody(b events.RecordBody, eventID string) {
	r.Client, r.Owner = b.Client, b.Owner
	if IsClientRecordType(r.Type) {
		r.Client = r.ID // a client record is its own client
	}
	r.Units = sortedUnits(b.Units)
	r.Assignees = sortedAssignees(b.Assignees)
	r.Links = slices.Clone(b.Links)
	if r.Prov == nil {
		return // a record only judged, never kept (recordAfter)
	}
	for k := range r.Prov {
		if len(k) > 9 && k[:9] == "assignee:" {
			delete(r.Prov, k)
		}
	}
	r.Prov["body"] = eventID
	for _, a := range r.Assignees {
		r.Prov["assignee:"+a.Principal+"|"+a.Relation] = eventID
	}
}

// IsClientRecordType reports whether records of type t are clients, whose client is themselves.
func IsClientRecordType(t string) bool { return t == "client" }
