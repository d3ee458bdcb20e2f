package projections

import (
	"strings"

	"github.com/acl-es/acl/aggregates"
)

// entry is one secondary index key and its value.
type entry struct {
	k string
	v string
}

// recordEntries lists the index entries of a record: none unless it is active. Index values
// carry the record's client, so that the client-contact filter needs no extra read.
func recordEntries(tenant string, r *aggregates.Record) []entry {
	var out []entry
	eachRecordEntry(nil, tenant, r, func(k []byte, v string) {
		out = append(out, entry{string(k), v})
	})
	return out
}

// eachRecordEntry calls emit with each index entry of r; the key is built in buf and valid
// during the call only.
func eachRecordEntry(buf []byte, tenant string, r *aggregates.Record, emit func(k []byte, v string)) []byte {
	if !r.Active() {
		return buf
	}
	typ, id := r.Type, r.ID
	buf = key(buf[:0], tenant, string(tagAll), typ, id)
	emit(buf, r.Client)
	if r.Client != "" {
		buf = key(buf[:0], tenant, string(tagClient), r.Client, typ, id)
		emit(buf, "")
	}
	for _, u := range r.Units {
		buf = key(buf[:0], tenant, string(tagUnit), u.Kind, u.ID, typ, id)
		emit(buf, r.Client)
	}
	if r.Owner != "" {
		buf = key(buf[:0], tenant, string(tagOwner), r.Owner, typ, id)
		emit(buf, r.Client)
	}
	for _, a := range r.Assignees {
		buf = key(buf[:0], tenant, string(tagAssignee), a.Principal, typ, id, a.Relation)
		emit(buf, r.Client)
	}
	for _, l := range r.Links {
		buf = key(buf[:0], tenant, string(tagLink), l.Type, l.ID, typ, id)
		emit(buf, r.Client)
	}
	return buf
}

// principalEntries lists the index entries of a principal: those of the record it is, plus the
// holders of its roles and of its direct grants (the candidates of the principals query).
func principalEntries(tenant string, p *aggregates.Principal) []entry {
	var out []entry
	eachPrincipalEntry(nil, tenant, p, func(k []byte, v string) {
		out = append(out, entry{string(k), v})
	})
	return out
}

func eachPrincipalEntry(buf []byte, tenant string, p *aggregates.Principal, emit func(k []byte, v string)) []byte {
	if !p.Active() {
		return buf
	}
	buf = eachRecordEntry(buf, tenant, aggregates.PrincipalAsRecord(p), emit)
	holder := roleHolderValue(p)
	for _, role := range p.Roles {
		buf = key(buf[:0], tenant, string(tagRole), role, p.ID)
		emit(buf, holder)
	}
	for i, g := range p.Grants {
		if i > 0 && p.Grants[i-1].Permission == g.Permission {
			continue // grants are sorted: one key per permission
		}
		buf = key(buf[:0], tenant, string(tagDirect), g.Permission, p.ID)
		emit(buf, "")
	}
	return buf
}

// roleHolderValue is the value of a principal's role holder entries: what narrowing its
// grants reads of it (aggregates.NarrowScope: kind and level) and whether it denies anything,
// "<level> <kind>" or "<level> <kind> denies". The change feed then finds the holders whose
// narrowed grants of a permission are at scope all without reading every holder (allHolders):
// a registration asked all 10^4 staff of the compare shape. Never empty: an empty value is an
// entry written before it existed (a model not migrated yet, replay's older checkpoints),
// for which the principal is read.
func roleHolderValue(p *aggregates.Principal) string {
	v := p.Level + " " + p.Kind
	if len(p.Denied) > 0 {
		v += " denies"
	}
	return v
}

// roleHolder is a role holder entry's value read back (roleHolderValue); ok is false for an
// entry without one.
type roleHolder struct {
	level, kind string
	denies      bool
}

func parseRoleHolder(v []byte) (h roleHolder, ok bool) {
	level, rest, ok := strings.Cut(string(v), " ")
	if !ok {
		return roleHolder{}, false
	}
	h.level = level
	h.kind, _, h.denies = strings.Cut(rest, " ")
	return h, true
}

// shadowed reports whether a record aggregate of type typ is hidden behind principals or units,
// which are the records of those types (aggregates.Facts answers them from principals and units).
func shadowed(typ string) bool {
	return aggregates.IsPrincipalRecordType(typ) || aggregates.IsUnitRecordType(typ)
}

// diffEntries calls del for entries of old that new lacks and set for entries of new that old
// lacks or holds with another value. Entry lists are short (a record's units, assignees and
// links), so a quadratic scan beats building maps unless they are long.
func diffEntries(old, new []entry, set func(k, v string), del func(k string)) {
	if len(old)*len(new) > 1024 {
		diffEntriesMap(old, new, set, del)
		return
	}
	for _, o := range old {
		if !hasKey(new, o.k) {
			del(o.k)
		}
	}
	for _, n := range new {
		if !hasEntry(old, n) {
			set(n.k, n.v)
		}
	}
}

func hasKey(es []entry, k string) bool {
	for _, e := range es {
		if e.k == k {
			return true
		}
	}
	return false
}

func hasEntry(es []entry, x entry) bool {
	for _, e := range es {
		if e == x {
			return true
		}
	}
	return false
}

func diffEntriesMap(old, new []entry, set func(k, v string), del func(k string)) {
	newVals := make(map[string]string, len(new))
	for _, n := range new {
		newVals[n.k] = n.v
	}
	oldVals := make(map[string]string, len(old))
	for _, o := range old {
		oldVals[o.k] = o.v
		if _, ok := newVals[o.k]; !ok {
			del(o.k)
		}
	}
	for _, n := range new {
		if v, ok := oldVals[n.k]; !ok || v != n.v {
			set(n.k, n.v)
		}
	}
}
