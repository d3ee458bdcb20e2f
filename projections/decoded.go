package projections

import (
	"hash/maphash"
	"sync"
)

// decoded caches decoded states for queries, keyed by state key and validated by the sequence
// stored in front of each value: a reader that finds the same sequence in its snapshot gets the
// same state (a state is a function of its aggregate's events up to that sequence), so the cache
// can never show a snapshot something it does not hold. Cached states are shared between
// goroutines and must not be mutated. Shards keep lock contention low; a full shard starts over.
type decoded struct {
	seed   maphash.Seed
	shards [16]decodedShard
	max    int // entries per shard
}

type decodedShard struct {
	mu sync.RWMutex
	m  map[string]decodedEntry
}

type decodedEntry struct {
	seq     uint64 // the state's own sequence, stored in front of its value
	v       any
	validAt uint64 // an applied sequence at which the DB held this state (modlog.go)
}

func newDecoded(entries int) *decoded {
	d := &decoded{seed: maphash.MakeSeed(), max: max(entries/16, 1)}
	for i := range d.shards {
		d.shards[i].m = map[string]decodedEntry{}
	}
	return d
}

func (d *decoded) shard(k []byte) *decodedShard {
	return &d.shards[maphash.Bytes(d.seed, k)%uint64(len(d.shards))]
}

// entry returns what is cached for key k.
func (d *decoded) entry(k []byte) (decodedEntry, bool) {
	s := d.shard(k)
	s.mu.RLock()
	e, ok := s.m[string(k)]
	s.mu.RUnlock()
	return e, ok
}

// put caches the state v of key k, whose own sequence is seq, as held by the DB at applied
// sequence validAt; an entry of the same state seen at a later sequence is kept.
func (d *decoded) put(k []byte, e decodedEntry) {
	s := d.shard(k)
	s.mu.Lock()
	if old, ok := s.m[string(k)]; ok && old.seq == e.seq && old.validAt >= e.validAt {
		s.mu.Unlock()
		return
	}
	if len(s.m) >= d.max {
		s.m = map[string]decodedEntry{}
	}
	s.m[string(k)] = e
	s.mu.Unlock()
}
