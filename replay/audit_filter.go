package replay

import (
	"bytes"
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// stateFilter is a Bloom filter of the state keys the audit index holds, so that the state of
// an aggregate seen for the first time (most events of a load) costs no Pebble read: such a Get
// missed the block cache for index and filter blocks of every level, and was 12 % of acld's CPU
// in an import (a fifth of it by the follower at all). Keys are added when their batch commits;
// the keys an existing index holds when it opens are added by a scan (scanStates), and until it
// is done the filter answers nothing (known is false) and Pebble does.
//
// The filter is blocked: a key's bits all lie in one 512-bit block (one cache line), so a look-up
// costs one memory access rather than one per bit. Words are atomic because the scan adds while
// the applying goroutine adds and asks.
type stateFilter struct {
	words []atomic.Uint64
	seed  maphash.Seed
	known atomic.Bool
}

const (
	// stateFilterBits sizes the filter: 2 MiB, some 15 bits per state at 10^6 records (about
	// 0.5 % false positives, each costing the Get it would have spared); it degrades gracefully
	// beyond.
	stateFilterBits   = 1 << 24
	stateBlockWords   = 8 // 512 bits
	stateFilterHashes = 7
)

func newStateFilter(nbits int) *stateFilter {
	nbits = max(nbits, stateBlockWords*64)
	return &stateFilter{words: make([]atomic.Uint64, nbits/64), seed: maphash.MakeSeed()}
}

// block returns the first word of k's block and the bit positions within it, packed 9 bits each.
func (f *stateFilter) block(k []byte) (int, uint64) {
	h := maphash.Bytes(f.seed, k)
	nblocks := uint64(len(f.words) / stateBlockWords)
	hi, _ := bits.Mul64(h, nblocks)
	// The positions come from a remix of h, so that they do not repeat the block's choice.
	return int(hi) * stateBlockWords, h * 0x9e3779b97f4a7c15
}

func (f *stateFilter) add(k []byte) {
	w0, pos := f.block(k)
	for range stateFilterHashes {
		bit := pos & 511
		f.words[w0+int(bit>>6)].Or(1 << (bit & 63))
		pos >>= 9
	}
}

// absent is true only for a key never added, once the filter knows every key of the index.
func (f *stateFilter) absent(k []byte) bool {
	if !f.known.Load() {
		return false
	}
	w0, pos := f.block(k)
	for range stateFilterHashes {
		bit := pos & 511
		if f.words[w0+int(bit>>6)].Load()&(1<<(bit&63)) == 0 {
			return true
		}
		pos >>= 9
	}
	return false
}

// stateTags are the key tags of states (audit_keys.go).
var stateTags = []byte{tagTenant, tagPrincipal, tagRecord}

// scanStates adds every state key of pb to f, tenant by tenant, skipping the logs and links
// between their state ranges; it sets f.known when done, and gives up without it when stop is
// closed or the read fails (Pebble then keeps answering).
func scanStates(pb *pebble.DB, f *stateFilter, stop <-chan struct{}) {
	it, err := pb.NewIter(&pebble.IterOptions{LowerBound: prefixEnd([]byte("!"))}) // past !applied
	if err != nil {
		return
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; {
		k := it.Key()
		end := 0
		for end < len(k) && k[end] != sep {
			end++
		}
		tenant := string(k[:end])
		for _, tag := range stateTags {
			prefix := akey(nil, tenant, string(tag))
			for ok = it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
				f.add(it.Key())
				if n++; n%4096 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		}
		ok = it.SeekGE(append([]byte(tenant), sep+1)) // the next tenant
	}
	if it.Error() == nil {
		f.known.Store(true)
	}
}
