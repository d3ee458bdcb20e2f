package aggregates

// implied applies the policy's implication rules (TO-4f) to perm on r, after the direct rule
// refused: a rule {permission: invoice.view, field: client, grants: client.view} allows
// client.view on client C to whoever is directly allowed invoice.view on an active invoice
// whose client is C. Only the field "client" exists, so r must be a client record. A denied
// implying permission implies nothing, and implications do not chain: the implying permission
// is checked with the direct rule only. The first implying record in ascending id order is the
// one the explanation names.
func implied(f Facts, t *Tenant, p *Principal, perm string, r *Record) (Decision, bool) {
	if !IsClientRecordType(r.Type) {
		return Decision{}, false
	}
	for _, rule := range t.Policy.Implies {
		if rule.Grants != perm || rule.Field != "client" || contains(p.Denied, rule.Permission) {
			continue
		}
		typ := PermissionType(rule.Permission)
		var d Decision
		var src *Record
		f.RecordsWithClient(typ, r.ID, func(x *Record) bool {
			if !x.Active() {
				return true
			}
			if ms := matches(f, t, p, rule.Permission, x, nil); len(ms) > 0 {
				d, src = allow(f, t, p, x, ms), x
				return false
			}
			return true
		})
		if src == nil {
			continue
		}
		d.Reason = perm + " on " + r.ID + " is implied by " + rule.Permission + " on " + typ + " " + src.ID +
			", whose client is " + r.ID + ": " + d.Reason
		d.Events = sortedEvents(addEvent(d.Events, r.Prov["body"]))
		return d, true
	}
	return Decision{}, false
}
