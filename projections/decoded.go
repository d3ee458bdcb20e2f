package projections

import "sync"

// decoded caches decoded states for queries, validated by the sequence stored in front of each
// value: a reader that finds the same sequence in its snapshot gets the same state (a state is
// a function of its aggregate's events up to that sequence), so the cache can never show a
// snapshot something it does not hold. Cached states are shared between goroutines and must not
// be mutated. Shards keep lock contention low; a full shard starts over.
//
// Entries are found by the 64-bit hash of the state key (keyHash, the modification log's), not
// by the key: a lookup then touches no key bytes (comparing string keys was a cache miss per
// check at 10^6 records). The caller confirms that an entry is the state it asked for, by the
// tenant stored with it and the state's own type and id, so a hash collision is only a miss.
type decoded struct {
	shards [16]decodedShard
	max    int // entries per shard
}

type decodedShard struct {
	mu sync.RWMutex
	m  map[uint64]decodedEntry
}

type decodedEntry struct {
	seq     uint64 // the state's own sequence, stored in front of its value
	v       any
	validAt uint64 // an applied sequence at which the DB held this state (modlog.go)
	tenant  string // the tenant of the state (the cached tenant's ID string, shared)
}

func newDecoded(entries int) *decoded {
	d := &decoded{max: max(entries/16, 1)}
	for i := range d.shards {
		d.shards[i].m = map[uint64]decodedEntry{}
	}
	return d
}

// shard picks by the hash's top bits; the map hashes the key again for its own buckets.
func (d *decoded) shard(h uint64) *decodedShard { return &d.shards[h>>60] }

// entry returns what is cached under key hash h: possibly another key's state (see decoded).
func (d *decoded) entry(h uint64) (decodedEntry, bool) {
	s := d.shard(h)
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	return e, ok
}

// put caches e under key hash h, unless the entry there holds the same state seen at a later
// sequence.
func (d *decoded) put(h uint64, e decodedEntry) {
	s := d.shard(h)
	s.mu.Lock()
	if old, ok := s.m[h]; ok && old.seq == e.seq && old.validAt >= e.validAt && old.v == e.v {
		s.mu.Unlock()
		return
	}
	if len(s.m) >= d.max {
		s.m = map[uint64]decodedEntry{}
	}
	s.m[h] = e
	s.mu.Unlock()
}

// drop forgets every entry. Maps do not shrink, so each shard gets a new one.
func (d *decoded) drop() {
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		s.m = map[uint64]decodedEntry{}
		s.mu.Unlock()
	}
}
