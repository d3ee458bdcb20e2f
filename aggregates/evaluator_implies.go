package aggregates

// CoveredRecords is an optional interface of Facts backed by indexes (the projections' read
// model): it narrows the records the implication rule has to try. Without it, the rule tries
// every record of the client, which over a store costs a read per record.
type CoveredRecords interface {
	// CoveredRecordsWithClient is RecordsWithClient for principal p: it calls fn, in ascending
	// id order until fn returns false, with every active record of type typ whose client is
	// client that Covers for p at one of scopes (scopes narrowed already, NarrowScope). It may
	// also call fn with records no scope covers (fn decides on each), never skip one covered.
	CoveredRecordsWithClient(p *Principal, scopes []string, typ, client string, fn func(*Record) bool)
}

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
	cr, indexed := f.(CoveredRecords)
	for _, rule := range t.Policy.Implies {
		if rule.Grants != perm || rule.Field != "client" || contains(p.Denied, rule.Permission) {
			continue
		}
		// p's narrowed grants of the implying permission, as Check narrows them: no grant, no
		// record can match, so the records need not be enumerated at all.
		var hbuf [8]match
		hs := held(t, p, rule.Permission, hbuf[:0])
		if len(hs) == 0 {
			continue
		}
		var sbuf [8]string
		scopes := sbuf[:0]
		for i := range hs {
			scopes = append(scopes, hs[i].scope)
		}
		typ := PermissionType(rule.Permission)
		var d Decision
		var src *Record
		try := func(x *Record) bool {
			if !x.Active() {
				return true
			}
			var a assignMemo
			if cover(f, p, x, hs, &a) {
				d, src = allow(f, t, p, x, hs, &a), x
				return false
			}
			return true
		}
		if indexed {
			cr.CoveredRecordsWithClient(p, scopes, typ, r.ID, try)
		} else {
			f.RecordsWithClient(typ, r.ID, try)
		}
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
