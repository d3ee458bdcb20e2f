package replay

import (
	"encoding/binary"
	"fmt"

	"github.com/acl-es/acl/events"
)

// auditCache keeps the index's committed states in memory, so that the next event of an
// aggregate costs no Pebble read (a state read back missed the block cache more often than
// not: 20-50 µs each). Only the goroutine applying batches uses it.
//
// It holds each state in a compact binary form of its own (never written to disk: the index
// keeps its JSON), key and value in one string: some 190 bytes of heap a record state, the map
// included, where the decoded state took 300, so that the same memory holds more; a decoded
// state's strings are slices of that string. Its size is bounded in bytes; when full it drops states (the map's
// choice, near enough random) for each it takes: starting over instead, as it did, emptied it
// twice during an import of 2*10^5 records and sent every state after that to Pebble, and
// recency would not help, since the states read again (a case an invoice links to, a record a
// command changes) are of any age.
type auditCache struct {
	max, size int
	m         map[string]string // state key -> encoded state
	enc       []byte
}

// cacheEntryOverhead is what an entry costs the heap besides its bytes: the map's slot and its
// share of the map's growth, and the allocation's rounding (measured: 192 bytes of heap for a
// record state of the compare shape whose key and value take 100).
const cacheEntryOverhead = 96

func newAuditCache(maxBytes int) *auditCache {
	return &auditCache{max: maxBytes, m: map[string]string{}}
}

// drop forgets every state; the map gets a new one, since maps do not shrink.
func (c *auditCache) drop() {
	c.m, c.size = map[string]string{}, 0
}

// get decodes the state under k into s (a *tenantState, *principalState or *recordState),
// false when the cache does not hold it.
func (c *auditCache) get(k string, s any) bool {
	v, ok := c.m[k]
	return ok && decodeCached(v, s)
}

// put keeps the state v under k.
func (c *auditCache) put(k string, v any) {
	c.enc = encodeCached(c.enc[:0], v)
	if old, in := c.m[k]; in {
		c.size -= len(k) + len(old) + cacheEntryOverhead
		delete(c.m, k)
	}
	for c.size+len(k)+len(c.enc)+cacheEntryOverhead > c.max && len(c.m) > 0 {
		for old, ov := range c.m {
			c.size -= len(old) + len(ov) + cacheEntryOverhead
			delete(c.m, old)
			break
		}
	}
	kv := k + string(c.enc) // one allocation for both
	c.m[kv[:len(k)]] = kv[len(k):]
	c.size += len(kv) + cacheEntryOverhead
}

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
