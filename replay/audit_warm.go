package replay

import (
	"bytes"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
)

// The cache's filling. After a start (or an idle acld's drop of its caches) the cache is empty,
// and the index's states are read one by one, by a Pebble Get each, as events come: in the
// commands workload after a restart nearly one a message, 20-50 µs each, most missing the block
// cache. So once the follower reads states from Pebble, each batch that did also reads the
// index's states in key order, warmPerRead for each read, into the cache: a range read, which
// reads each block once for the states it holds, until the cache holds every state or the share
// a cleaning keeps. An idle index reads nothing, so its memory stays as it was.
//
// It runs in the goroutine that applies batches, between two (under Audit.mu), so the states it
// reads are the committed ones the cache would hold; it puts only those the cache does not hold.

// warmPerRead is how many states a batch reads into the cache for each state it read from
// Pebble: 2*10^5 states after some 800 reads.
const warmPerRead = 256

// auditWarm is where the cache's filling stands.
type auditWarm struct {
	next []byte // the key to go on from; nil: the first state
	done bool
}

// warmBuf holds the states warmState decodes into, one of each kind, reused.
type warmBuf struct {
	principal principalState
	record    recordState
}

// warmCache reads up to n states into the cache, from where the last call stopped.
func (a *Audit) warmCache(n int) {
	lower := a.warm.next
	if lower == nil {
		lower = prefixEnd([]byte("!")) // past !applied
	}
	it, err := a.pb.NewIter(&pebble.IterOptions{LowerBound: lower})
	if err != nil {
		a.warm.done = true
		return
	}
	defer it.Close()
	defer func() { a.warmBuf = warmBuf{} }() // its strings were the iterator's bytes
	ok := it.First()
	for ; ok && n > 0 && !a.cache.full(); n-- {
		k := it.Key()
		end := bytes.IndexByte(k, sep)
		switch {
		case end < 0 || end+2 >= len(k) || k[end+2] != sep:
			ok = it.Next() // not a key of a table (none such is written)
		case k[end+1] < tagPrincipal: // the tenant's links: its states come next
			ok = it.SeekGE(append(k[:end+1:end+1], tagPrincipal))
		case k[end+1] > tagTenant: // the tenant's holders and logs: the next tenant
			ok = it.SeekGE(append(k[:end:end], sep+1))
		default:
			a.warmState(k, it)
			ok = it.Next()
		}
	}
	switch {
	case ok && !a.cache.full():
		a.warm.next = bytes.Clone(it.Key())
	default:
		// Done, full, or the read failed: a failed read leaves the states to loadState, which
		// reports what fails.
		a.warm.done = true
	}
}

// warmState puts the state at the iterator's position into the cache, unless it holds it. The
// key and value are read in place, not copied (a third of the filling's CPU went to copies and
// allocations): the cache copies what it keeps (put), and the scanner's strings are slices of
// the value, read by put's encoding before the iterator moves.
func (a *Audit) warmState(k []byte, it *pebble.Iterator) {
	ks := unsafe.String(unsafe.SliceData(k), len(k))
	if a.cache.has(ks) {
		return
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return
	}
	vs := unsafe.String(unsafe.SliceData(v), len(v))
	switch k[bytes.IndexByte(k, sep)+1] {
	case tagPrincipal:
		s := &a.warmBuf.principal
		if fastPrincipalState(vs, s) || decodeState(v, s) == nil {
			a.cache.put(ks, s)
		}
	case tagRecord:
		s := &a.warmBuf.record
		if fastRecordState(vs, s) || decodeState(v, s) == nil {
			a.cache.put(ks, s)
		}
	case tagTenant:
		s := new(tenantState)
		if decodeState(v, s) == nil {
			a.cache.put(ks, s)
		}
	}
}
