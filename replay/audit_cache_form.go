package replay

import (
	"encoding/binary"
	"fmt"

	"github.com/acl-es/acl/events"
)

// The audit cache's form of a state (audit_cache.go): never written to disk, where the index keeps
// its JSON.

// encodeCached appends the cache's form of a state: uvarints, and strings as a uvarint length
// then the bytes; a slice as its length plus one (0 for nil: the JSON tells nil from empty).
func encodeCached(dst []byte, v any) []byte {
	str := func(s string) {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	strs := func(ss []string) {
		dst = sliceLen(dst, ss == nil, len(ss))
		for _, s := range ss {
			str(s)
		}
	}
	switch x := v.(type) {
	case *tenantState:
		strs(x.Features)
		strs(x.ImplyTypes)
	case *principalState:
		str(x.Kind)
		strs(x.Roles)
		dst = binary.AppendUvarint(dst, x.First)
		dst = binary.AppendUvarint(dst, x.Removed)
	case *recordState:
		exists := byte(0)
		if x.Exists {
			exists = 1
		}
		dst = append(dst, exists)
		str(x.Client)
		str(x.Owner)
		dst = sliceLen(dst, x.Assignees == nil, len(x.Assignees))
		for _, a := range x.Assignees {
			str(a.Principal)
			str(a.Relation)
		}
		dst = sliceLen(dst, x.Links == nil, len(x.Links))
		for _, l := range x.Links {
			str(l.Type)
			str(l.ID)
		}
		dst = binary.AppendVarint(dst, int64(x.LinkedBy))
		dst = binary.AppendUvarint(dst, x.First)
		dst = binary.AppendUvarint(dst, x.Removed)
	default:
		panic(fmt.Sprintf("replay: audit cache: no encoding of %T", v))
	}
	return dst
}

func sliceLen(dst []byte, isNil bool, n int) []byte {
	if isNil {
		return append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(n)+1)
}

// cacheReader reads encodeCached's form; a malformed value (a bug) sets bad.
type cacheReader struct {
	s   string
	bad bool
}

func (r *cacheReader) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(r.s) == 0 {
			r.bad = true
			return 0
		}
		b := r.s[0]
		r.s = r.s[1:]
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x
		}
	}
	r.bad = true
	return 0
}

func (r *cacheReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *cacheReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// count reads a slice length: -1 for nil.
func (r *cacheReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.s))+1 { // every element takes a byte at least
		r.bad = true
		return -1
	}
	return int(n) - 1
}

func (r *cacheReader) strs() []string {
	n := r.count()
	if n < 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// decodeCached decodes v into s; false when v is malformed.
func decodeCached(v string, s any) bool {
	r := &cacheReader{s: v}
	switch x := s.(type) {
	case *tenantState:
		x.Features = r.strs()
		x.ImplyTypes = r.strs()
	case *principalState:
		x.Kind = r.str()
		x.Roles = r.strs()
		x.First = r.uvarint()
		x.Removed = r.uvarint()
	case *recordState:
		if len(r.s) == 0 {
			return false
		}
		x.Exists = r.s[0] == 1
		r.s = r.s[1:]
		x.Client = r.str()
		x.Owner = r.str()
		if n := r.count(); n >= 0 {
			x.Assignees = make([]events.Assignee, n)
			for i := range x.Assignees {
				x.Assignees[i] = events.Assignee{Principal: r.str(), Relation: r.str()}
			}
		}
		if n := r.count(); n >= 0 {
			x.Links = make([]events.RecordRef, n)
			for i := range x.Links {
				x.Links[i] = events.RecordRef{Type: r.str(), ID: r.str()}
			}
		}
		x.LinkedBy = int(r.varint())
		x.First = r.uvarint()
		x.Removed = r.uvarint()
	default:
		return false
	}
	return !r.bad && len(r.s) == 0
}
