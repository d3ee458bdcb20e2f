package commands

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// A spilled state, version 2: the state's fields in a flat form instead of its JSON. The cache
// reads a spilled state for most commands on an aggregate it dropped and writes one for every
// command: json.Unmarshal and json.Marshal of the states were 2-3 % of acld's CPU under
// aclbench's commands workload, and most of the spill's allocation.
//
//	"ACLS" 2 kind uvarint seq
//	principal: str id, flags, str kind, str email, str client, units, strs roles, str level,
//	           grants, strs denied, prov
//	record:    str type, str id, flags, str client, units, str owner, assignees, links, prov
//	commands (see appendCommands)
//
// where flags is a byte (1: exists, 2: removed), a list (units, strs, grants, assignees, links)
// is a uvarint n+1 (0: nil, so that nil and empty read back as they were) and n pairs of str
// (one str for strs), and prov is a uvarint n+1 and n pairs of str. Version 1 (the JSON of the
// state where version 2 has its fields) is still read: a spill kept by an older release.
const spillVersionFlat = 2

const (
	flagExists  = 1
	flagRemoved = 2
)

func stateFlags(exists, removed bool) byte {
	var f byte
	if exists {
		f |= flagExists
	}
	if removed {
		f |= flagRemoved
	}
	return f
}

// appendList appends n+1 (0 for a nil list) and each item's two strings.
func appendList[T any](b []byte, items []T, strs func(T) (string, string)) []byte {
	if items == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(items))+1)
	for _, it := range items {
		x, y := strs(it)
		b = appendStr(appendStr(b, x), y)
	}
	return b
}

func appendStrs(b []byte, items []string) []byte {
	if items == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(items))+1)
	for _, s := range items {
		b = appendStr(b, s)
	}
	return b
}

// appendProv appends the provenance map; its values are event ids, written by ids.
func appendProv(b []byte, prov map[string]string, ids *idWriter) []byte {
	if prov == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(prov))+1)
	for k, v := range prov {
		b = ids.append(appendStr(b, k), v)
	}
	return b
}

// flatSize is about the bytes of a state's flat form without its commands.
func flatSize(strs ...string) int {
	n := 64
	for _, s := range strs {
		n += len(s) + 1
	}
	return n
}

func appendPrincipal(b []byte, p *aggregates.Principal, ids *idWriter) []byte {
	b = appendStr(b, p.ID)
	b = append(b, stateFlags(p.Exists, p.Removed))
	b = appendStr(appendStr(appendStr(b, p.Kind), p.Email), p.Client)
	b = appendList(b, p.Units, func(u events.UnitRef) (string, string) { return u.Kind, u.ID })
	b = appendStrs(b, p.Roles)
	b = appendStr(b, p.Level)
	b = appendList(b, p.Grants, func(g events.Grant) (string, string) { return g.Permission, g.Scope })
	b = appendStrs(b, p.Denied)
	return appendProv(b, p.Prov, ids)
}

func appendRecord(b []byte, r *aggregates.Record, ids *idWriter) []byte {
	b = appendStr(appendStr(b, r.Type), r.ID)
	b = append(b, stateFlags(r.Exists, r.Removed))
	b = appendStr(b, r.Client)
	b = appendList(b, r.Units, func(u events.UnitRef) (string, string) { return u.Kind, u.ID })
	b = appendStr(b, r.Owner)
	b = appendList(b, r.Assignees, func(a events.Assignee) (string, string) { return a.Principal, a.Relation })
	b = appendList(b, r.Links, func(l events.RecordRef) (string, string) { return l.Type, l.ID })
	return appendProv(b, r.Prov, ids)
}

// list reads what appendList wrote; each item takes at least two bytes.
func readList[T any](r *snapReader, mk func(x, y string) T) []T {
	n := r.count(1)
	if n == 0 || r.err != nil {
		return nil
	}
	n--
	if n > len(r.s)/2 {
		r.err = errors.New("count beyond the data")
		return nil
	}
	items := make([]T, n)
	for i := range items {
		x := r.str()
		items[i] = mk(x, r.str())
	}
	return items
}

func (r *snapReader) strs() []string {
	n := r.count(1)
	if n == 0 || r.err != nil {
		return nil
	}
	n--
	items := make([]string, n)
	for i := range items {
		items[i] = r.str()
	}
	return items
}

// prov reads what appendProv wrote; nil reads as an empty map (Apply writes into it), as
// version 1 did.
func (r *snapReader) prov() map[string]string {
	n := r.count(1)
	if n > 0 {
		n--
	}
	if n > len(r.s)/2 {
		r.err = errors.New("count beyond the data")
		return map[string]string{}
	}
	m := make(map[string]string, n)
	for range n {
		k := r.str()
		m[k] = r.id()
	}
	return m
}

func (r *snapReader) flags() (exists, removed bool) {
	if r.err != nil {
		return false, false
	}
	if r.s == "" {
		r.err = errors.New("truncated")
		return false, false
	}
	f := r.s[0]
	r.s = r.s[1:]
	if f&^(flagExists|flagRemoved) != 0 {
		r.err = fmt.Errorf("bad flags %#x", f)
	}
	return f&flagExists != 0, f&flagRemoved != 0
}

func readPrincipal(r *snapReader) *aggregates.Principal {
	p := &aggregates.Principal{ID: r.str()}
	p.Exists, p.Removed = r.flags()
	p.Kind, p.Email, p.Client = r.str(), r.str(), r.str()
	p.Units = readList(r, func(k, id string) events.UnitRef { return events.UnitRef{Kind: k, ID: id} })
	p.Roles = r.strs()
	p.Level = r.str()
	p.Grants = readList(r, func(perm, scope string) events.Grant { return events.Grant{Permission: perm, Scope: scope} })
	p.Denied = r.strs()
	p.Prov = r.prov()
	return p
}

func readRecord(r *snapReader) *aggregates.Record {
	rec := &aggregates.Record{}
	rec.Type, rec.ID = r.str(), r.str()
	rec.Exists, rec.Removed = r.flags()
	rec.Client = r.str()
	rec.Units = readList(r, func(k, id string) events.UnitRef { return events.UnitRef{Kind: k, ID: id} })
	rec.Owner = r.str()
	rec.Assignees = readList(r, func(p, rel string) events.Assignee { return events.Assignee{Principal: p, Relation: rel} })
	rec.Links = readList(r, func(typ, id string) events.RecordRef { return events.RecordRef{Type: typ, ID: id} })
	rec.Prov = r.prov()
	return rec
}
