package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Principals and records, the states written most, are stored in a compact binary form: JSON
// cost about a third of the projector's time. The body starts with a format byte (JSON bodies
// start with '{', so both can be told apart); strings and lists are uvarint-length prefixed;
// the provenance map is written in key order, so equal states encode to equal bytes.
const formatBinary1 = 1

var errShort = errors.New("projections: truncated state")

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) num(n uint64) { e.b = binary.AppendUvarint(e.b, n) }

func (e *encoder) flag(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) strs(xs []string) {
	e.num(uint64(len(xs)))
	for _, x := range xs {
		e.str(x)
	}
}

func (e *encoder) units(us []events.UnitRef) {
	e.num(uint64(len(us)))
	for _, u := range us {
		e.str(u.Kind)
		e.str(u.ID)
	}
}

func (e *encoder) prov(m map[string]string) {
	var buf [16]string // most states have a few provenance entries: no allocation for them
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.num(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// decoder reads a body copied once into one string: every string it returns is a part of that
// string, so a decoded state is a few objects (the state, its slices and map, the text) instead
// of one per string. A state in a cache lives for long: each object is one more for every
// collection to mark and one more hole in a span when it goes, and a principal or record had
// 10-20 strings (its ids, each provenance entry's key and event id). The text stays whole as
// long as any of its strings does, which is the state's lifetime: the body is its size.
type decoder struct {
	b   []byte // what is left of s to read (s's bytes, never written)
	s   string // the body
	err error
}

func newDecoder(body []byte) decoder {
	s := string(body)
	return decoder{b: unsafe.Slice(unsafe.StringData(s), len(s)), s: s}
}

func (d *decoder) num() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *decoder) str() string {
	n := d.num()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errShort
		return ""
	}
	at := len(d.s) - len(d.b)
	d.b = d.b[n:]
	return d.s[at : at+int(n)]
}

func (d *decoder) flag() bool {
	if d.err != nil || len(d.b) == 0 {
		d.err = errShort
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// count reads a list length, refusing one longer than the bytes left could hold.
func (d *decoder) count() int {
	n := d.num()
	if n > uint64(len(d.b)) {
		d.err = errShort
		return 0
	}
	return int(n)
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) units() []events.UnitRef {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]events.UnitRef, n)
	for i := range out {
		out[i] = events.UnitRef{Kind: d.str(), ID: d.str()}
	}
	return out
}

func (d *decoder) prov() map[string]string {
	n := d.count()
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func appendRecord(dst []byte, r *aggregates.Record) []byte {
	e := encoder{b: append(dst, formatBinary1)}
	e.str(r.Type)
	e.str(r.ID)
	e.flag(r.Exists)
	e.flag(r.Removed)
	e.str(r.Client)
	e.units(r.Units)
	e.str(r.Owner)
	e.num(uint64(len(r.Assignees)))
	for _, a := range r.Assignees {
		e.str(a.Principal)
		e.str(a.Relation)
	}
	e.num(uint64(len(r.Links)))
	for _, l := range r.Links {
		e.str(l.Type)
		e.str(l.ID)
	}
	e.prov(r.Prov)
	e.num(r.Seq)
	return e.b
}

func readRecord(body []byte) (*aggregates.Record, error) {
	d := newDecoder(body[1:])
	r := &aggregates.Record{Type: d.str(), ID: d.str(), Exists: d.flag(), Removed: d.flag(),
		Client: d.str(), Units: d.units(), Owner: d.str()}
	if n := d.count(); n > 0 {
		r.Assignees = make([]events.Assignee, n)
		for i := range r.Assignees {
			r.Assignees[i] = events.Assignee{Principal: d.str(), Relation: d.str()}
		}
	}
	if n := d.count(); n > 0 {
		r.Links = make([]events.RecordRef, n)
		for i := range r.Links {
			r.Links[i] = events.RecordRef{Type: d.str(), ID: d.str()}
		}
	}
	r.Prov = d.prov()
	r.Seq = d.num()
	if d.err != nil {
		return nil, fmt.Errorf("projections: decode record: %w", d.err)
	}
	return r, nil
}

func appendPrincipal(dst []byte, p *aggregates.Principal) []byte {
	e := encoder{b: append(dst, formatBinary1)}
	e.str(p.ID)
	e.flag(p.Exists)
	e.flag(p.Removed)
	e.str(p.Kind)
	e.str(p.Email)
	e.str(p.Client)
	e.units(p.Units)
	e.strs(p.Roles)
	e.str(p.Level)
	e.num(uint64(len(p.Grants)))
	for _, g := range p.Grants {
		e.str(g.Permission)
		e.str(g.Scope)
	}
	e.strs(p.Denied)
	e.prov(p.Prov)
	e.num(p.Seq)
	return e.b
}

func readPrincipal(body []byte) (*aggregates.Principal, error) {
	d := newDecoder(body[1:])
	p := &aggregates.Principal{ID: d.str(), Exists: d.flag(), Removed: d.flag(), Kind: d.str(),
		Email: d.str(), Client: d.str(), Units: d.units(), Roles: d.strs(), Level: d.str()}
	if n := d.count(); n > 0 {
		p.Grants = make([]events.Grant, n)
		for i := range p.Grants {
			p.Grants[i] = events.Grant{Permission: d.str(), Scope: d.str()}
		}
	}
	p.Denied = d.strs()
	p.Prov = d.prov()
	p.Seq = d.num()
	if d.err != nil {
		return nil, fmt.Errorf("projections: decode principal: %w", d.err)
	}
	return p, nil
}
