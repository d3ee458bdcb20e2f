package replay

import (
	"encoding/binary"
	"hash/maphash"
	"strings"
	"unsafe"
)

// auditCache keeps the index's committed states in memory, so that the next event of an
// aggregate costs no Pebble read (a state read back missed the block cache more often than
// not: 20-50 µs each, and with them the reads were 7 % of acld's CPU in the commands workload).
// Only the goroutine applying batches uses it.
//
// It holds each state in a compact binary form of its own (audit_cache_form.go) in large byte
// segments, its key beside it less the tenant and tag that start it (a number in a table of
// such prefixes), and finds it by a map from the key's hash to where its entry starts: some 115
// bytes a record state of the compare shape, the index included, where a map of strings took
// 190-220 (a map slot, a string header and an allocation's rounding each), so that its 32 MiB
// hold every state of 2*10^5 records, with no pointer for the collector to follow. A get
// compares the whole key, so two keys of one hash cost a miss, never a wrong state. A decoded
// state's strings point into the segment, which is never written again where an entry lies
// (segments only grow within their capacity, and a removed one is left to the collector).
//
// Its size is bounded in bytes. A state written again leaves its old entry behind as garbage;
// when a new segment would pass the bound, the oldest one is cleaned: the entries still current
// move to the newest segment while the current entries take at most cacheKeepNum/cacheKeepDen of
// the bound, and beyond that they are dropped (near enough at random for the commands workload:
// the states read again, a case an invoice links to, a record a command changes, are of any
// age, so recency would not help; starting over when full, as the first cache did, emptied it
// twice during an import of 2*10^5 records and sent every state after that to Pebble).
type auditCache struct {
	max     int // bytes: the segments' capacity, the prefixes and the index's estimate
	segSize int
	seed    maphash.Seed
	idx     map[uint64]uint32 // hash of a key -> its entry: segment id<<cacheOffBits | offset
	segs    [][]byte          // oldest first; segs[i] has id (first+i) mod cacheSegIDs
	first   uint32
	arena   int               // the segments' capacity
	live    int               // bytes of the entries idx points at
	prefix  []string          // a key's tenant and tag, by number; 0 is ""
	prefixN map[string]uint64 // number of each prefix
	pbytes  int               // what the prefixes take
	dropped uint64            // current entries dropped for room since the cache was made or emptied
	enc     []byte
	ent     []byte
}

const (
	cacheOffBits = 20 // offsets within a segment: segments of at most 1 MiB
	cacheSegIDs  = 1 << (32 - cacheOffBits)
	// cacheIndexEntry is what an entry costs the index: a slot of the map (16 bytes and a
	// control byte) and its share of the map's growth, between 7/16 and 7/8 full (measured: 27
	// bytes an entry with 2*10^5 of them).
	cacheIndexEntry = 28
	cachePrefix     = 64 // what a prefix costs besides its bytes: two map slots, a string
	cacheKeepNum    = 7  // a cleaning keeps current entries while they take at most 7/8
	cacheKeepDen    = 8
)

func newAuditCache(maxBytes int) *auditCache {
	c := &auditCache{max: maxBytes, seed: maphash.MakeSeed()}
	// A segment is a 32nd of the bound, at most 256 KiB: cleaning one frees a small part, and
	// the room that the share a cleaning keeps leaves holds a few, so that a round of
	// cleanings makes room without dropping what it may keep. It is large enough that the
	// segment ids do not wrap onto a live one (the bound and a segment that a cleaning passes
	// it by); a bound of a few states (tests) has two.
	c.segSize = min(max(min(maxBytes/32, 256<<10), min(maxBytes/2, 256), maxBytes/(cacheSegIDs/2)+1), 1<<cacheOffBits)
	if maxBytes > c.segSize*(cacheSegIDs/2) {
		panic("replay: audit cache bound too large")
	}
	c.drop()
	return c
}

// drop forgets every state; the index gets a new map, since maps do not shrink.
func (c *auditCache) drop() {
	c.idx, c.segs, c.first, c.arena, c.live, c.dropped = map[uint64]uint32{}, nil, 0, 0, 0, 0
	c.prefix, c.prefixN, c.pbytes = []string{""}, map[string]uint64{"": 0}, 0
}

// len is the number of states held.
func (c *auditCache) len() int { return len(c.idx) }

// bytes is what the cache counts against its bound.
func (c *auditCache) bytes() int { return c.arena + c.pbytes + len(c.idx)*cacheIndexEntry }

// full reports whether the current entries take the share a cleaning keeps: a state put now
// drops another.
func (c *auditCache) full() bool {
	return c.live+c.pbytes+len(c.idx)*cacheIndexEntry >= c.max/cacheKeepDen*cacheKeepNum
}

// splitKey splits a state key into its prefix, "<tenant>\x00<tag>\x00", and the rest; a key of
// another shape has the prefix "".
func splitKey(k string) (prefix, rest string) {
	for i := 0; i < len(k); i++ {
		if k[i] == sep {
			if i+2 < len(k) && k[i+2] == sep {
				return k[:i+3], k[i+3:]
			}
			break
		}
	}
	return "", k
}

// get decodes the state under k into s (a *tenantState, *principalState or *recordState),
// false when the cache does not hold it.
func (c *auditCache) get(k string, s any) bool {
	val, ok := c.lookup(k)
	return ok && decodeCached(val, s)
}

// has reports whether the cache holds the state under k.
func (c *auditCache) has(k string) bool {
	_, ok := c.lookup(k)
	return ok
}

func (c *auditCache) lookup(k string) (val string, ok bool) {
	loc, ok := c.idx[maphash.String(c.seed, k)]
	if !ok {
		return "", false
	}
	p, rest, val, _ := c.entryAt(loc)
	prefix, krest := splitKey(k)
	return val, rest == krest && c.prefix[p] == prefix
}

// put keeps the state v under k.
func (c *auditCache) put(k string, v any) {
	c.enc = encodeCached(c.enc[:0], v)
	c.putEncoded(k, c.enc)
}

// putEncoded keeps the encoded state v under k, instead of any entry of k's hash. It keeps no
// reference to k or v.
func (c *auditCache) putEncoded(k string, v []byte) {
	h := maphash.String(c.seed, k)
	if loc, ok := c.idx[h]; ok {
		_, _, _, n := c.entryAt(loc)
		c.live -= n
		delete(c.idx, h)
	}
	prefix, rest := splitKey(k)
	p, ok := c.prefixN[prefix]
	if !ok {
		prefix = strings.Clone(prefix) // k may be read in place (warmState)
		p = uint64(len(c.prefix))
		c.prefix = append(c.prefix, prefix)
		c.prefixN[prefix] = p
		c.pbytes += len(prefix) + cachePrefix
	}
	e := binary.AppendUvarint(c.ent[:0], p)
	e = binary.AppendUvarint(e, uint64(len(rest)))
	e = append(e, rest...)
	e = binary.AppendUvarint(e, uint64(len(v)))
	e = append(e, v...)
	c.ent = e
	if len(e) > c.segSize {
		return // a state of thousands of assignees: read from Pebble each time
	}
	c.idx[h] = c.appendEntry(e, true)
	c.live += len(e)
}

// appendEntry appends the entry e to a segment with room for it (room) and returns where.
func (c *auditCache) appendEntry(e []byte, clean bool) uint32 {
	seg := c.room(len(e), clean)
	id := (c.first + uint32(seg)) % cacheSegIDs
	loc := id<<cacheOffBits | uint32(len(c.segs[seg]))
	c.segs[seg] = append(c.segs[seg], e...)
	return loc
}

// room returns the index in segs of a segment with n bytes free for an entry: the newest, or a
// new one when it has not. Before, unless clean is false (a cleaning's own moves, which may pass
// the bound by a segment that its loop then takes back), it cleans the oldest segments while the
// entry would pass the bound. A whole round of cleanings that did not make room (small
// segments, where the tails left free add up) is followed by cleanings that move nothing, so
// the loop ends.
func (c *auditCache) room(n int, clean bool) int {
	fits := func() bool { l := len(c.segs); return l > 0 && cap(c.segs[l-1])-len(c.segs[l-1]) >= n }
	need := func() int {
		if fits() {
			return cacheIndexEntry
		}
		return cacheIndexEntry + c.segSize
	}
	round := len(c.segs)
	for i := 0; clean && len(c.segs) > 0 && c.bytes()+need() > c.max; i++ {
		c.clean(i < round)
	}
	if !fits() {
		c.segs = append(c.segs, make([]byte, 0, c.segSize))
		c.arena += c.segSize
	}
	return len(c.segs) - 1
}

// entryAt returns the entry at loc: its key's prefix number and rest, its encoded state, and
// its length.
func (c *auditCache) entryAt(loc uint32) (prefix uint64, rest, val string, n int) {
	seg := c.segs[(loc>>cacheOffBits-c.first)%cacheSegIDs]
	return parseEntry(seg[loc&(1<<cacheOffBits-1):])
}

func parseEntry(b []byte) (prefix uint64, rest, val string, n int) {
	prefix, i := binary.Uvarint(b)
	rl, j := binary.Uvarint(b[i:])
	i += j
	rest = unsafe.String(unsafe.SliceData(b[i:]), int(rl))
	i += int(rl)
	vl, j := binary.Uvarint(b[i:])
	i += j
	val = unsafe.String(unsafe.SliceData(b[i:]), int(vl))
	return prefix, rest, val, i + int(vl)
}

// clean removes the oldest segment: its current entries move to the newest segment while the
// current entries take at most the keep share of the bound (and move is true), and are dropped
// beyond.
func (c *auditCache) clean(move bool) {
	old := c.segs[0]
	oldID := c.first
	c.segs[0] = nil
	c.segs = c.segs[1:]
	c.first = (c.first + 1) % cacheSegIDs
	c.arena -= cap(old)
	var h maphash.Hash
	h.SetSeed(c.seed)
	for off := 0; off < len(old); {
		p, rest, _, n := parseEntry(old[off:])
		h.Reset()
		h.WriteString(c.prefix[p])
		h.WriteString(rest)
		k := h.Sum64()
		if loc, ok := c.idx[k]; ok && loc == oldID<<cacheOffBits|uint32(off) {
			if move && !c.full() {
				c.idx[k] = c.appendEntry(old[off:off+n], false)
			} else {
				delete(c.idx, k)
				c.live -= n
				c.dropped++
			}
		}
		off += n
	}
}
