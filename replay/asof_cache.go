package replay

import (
	"slices"
	"sync"

	"github.com/acl-es/acl/projections"
)

// asOfState is a throw-away read model at one sequence: an overlay on an open checkpoint (its
// base) with the events after it replayed, and an engine over it.
type asOfState struct {
	tenant  string
	seq     uint64
	base    uint64 // the checkpoint the overlay is on
	overlay *projections.Overlay
	done    func() // releases the base
	engine  *projections.Engine

	ready chan struct{} // closed once built (or failed: err)
	err   error
	refs  int  // readers holding it; guarded by the cache's mu
	gone  bool // evicted: closed when the last reader releases it
}

func (st *asOfState) close() {
	if st.overlay != nil {
		st.overlay.Close()
	}
	if st.done != nil {
		st.done()
	}
}

// stateKey names an as_of state: a tenant at a sequence (a state holds only its tenant's
// events after its checkpoint).
type stateKey struct {
	tenant string
	seq    uint64
}

// stateCache keeps the last few as_of states open, so that the pages of one visible query or an
// auditor's repeated questions about one moment replay once. Concurrent askers of the same
// state share one build.
type stateCache struct {
	closing sync.WaitGroup // states being closed in the background

	mu     sync.Mutex
	max    int
	bySeq  map[stateKey]*asOfState
	order  []stateKey // least recently used first
	taken  int        // states whose overlay a later one took over (tests)
	closed int        // states closed (tests)
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, bySeq: map[stateKey]*asOfState{}}
}

// acquire returns the state at seq, building it with build when it is not cached, and a release
// function the caller must call when done with it. A state that is not cached may take over the
// overlay of an idle cached state of the same tenant at a sequence in [floor, seq), itself on
// the checkpoint at floor: build then finds st.overlay set, at that sequence, and only replays
// forward from it (an auditor stepping through time, a diff's "to" after its "from"). floor is
// the checkpoint a new state would start from: from further back, a new state replays more, and
// the overlay would hold more than one checkpoint's spacing of events.
func (c *stateCache) acquire(seq stateKey, floor uint64, build func(st *asOfState) error) (*asOfState, func(), error) {
	c.mu.Lock()
	st := c.bySeq[seq]
	if st != nil {
		st.refs++
		c.touch(seq)
		c.mu.Unlock()
		<-st.ready
	} else {
		st = &asOfState{tenant: seq.tenant, seq: seq.seq, ready: make(chan struct{}), refs: 1}
		if old := c.takeOver(seq, floor); old != nil {
			st.base, st.overlay, st.done = old.base, old.overlay, old.done
		}
		c.bySeq[seq] = st
		c.order = append(c.order, seq)
		c.mu.Unlock()
		st.err = build(st)
		close(st.ready)
		c.mu.Lock()
		if st.err != nil && c.bySeq[seq] == st {
			// A failure is not cached: the next asker tries again.
			delete(c.bySeq, seq)
			c.order = slices.DeleteFunc(c.order, func(s stateKey) bool { return s == seq })
			st.gone = true
		}
		c.evict()
		c.mu.Unlock()
	}
	release := func() { c.release(st) }
	if st.err != nil {
		release()
		return nil, nil, st.err
	}
	return st, sync.OnceFunc(release), nil
}

func (c *stateCache) release(st *asOfState) {
	c.mu.Lock()
	st.refs--
	closeIt := st.gone && st.refs == 0
	c.mu.Unlock()
	if closeIt {
		c.closeLater(st)
	}
}

// closeLater closes a state off the query's path (its base may close with it, which takes
// milliseconds that no answer waits for).
func (c *stateCache) closeLater(st *asOfState) {
	c.closing.Add(1)
	go func() {
		defer c.closing.Done()
		st.close()
		c.mu.Lock()
		c.closed++
		c.mu.Unlock()
	}()
}

// takeOver removes from the cache the newest idle, built state of seq's tenant at a sequence in
// [floor, seq) and hands over its copy (the caller owns it; the state no longer does). nil when
// there is none. Called with mu held.
func (c *stateCache) takeOver(seq stateKey, floor uint64) *asOfState {
	var best *asOfState
	for _, k := range c.order {
		st := c.bySeq[k]
		if k.tenant != seq.tenant || k.seq >= seq.seq || k.seq < floor || st.base != floor || st.refs > 0 || (best != nil && best.seq > k.seq) {
			continue
		}
		select {
		case <-st.ready:
			if st.err == nil && st.overlay != nil {
				best = st
			}
		default: // still being built
		}
	}
	if best == nil {
		return nil
	}
	c.taken++
	k := stateKey{best.tenant, best.seq}
	delete(c.bySeq, k)
	c.order = slices.DeleteFunc(c.order, func(s stateKey) bool { return s == k })
	old := *best
	best.overlay, best.done, best.engine, best.gone = nil, nil, nil, true // nothing left to close
	return &old
}

// touch moves seq to the most recently used end. Called with mu held.
func (c *stateCache) touch(seq stateKey) {
	if i := slices.Index(c.order, seq); i >= 0 {
		c.order = append(slices.Delete(c.order, i, i+1), seq)
	}
}

// evict drops the least recently used states beyond max; one still in use is closed by its last
// reader. Called with mu held.
func (c *stateCache) evict() {
	for len(c.order) > c.max {
		seq := c.order[0]
		c.order = c.order[1:]
		st := c.bySeq[seq]
		delete(c.bySeq, seq)
		st.gone = true
		if st.refs == 0 {
			c.closeLater(st)
		}
	}
}

// close closes every cached state and waits for them; states still in use close when released
// (and are not waited for).
func (c *stateCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seq := range c.order {
		st := c.bySeq[seq]
		st.gone = true
		if st.refs == 0 {
			c.closeLater(st)
		}
	}
	c.order, c.bySeq = nil, map[stateKey]*asOfState{}
	c.mu.Unlock()
	c.closing.Wait()
	c.mu.Lock()
}
