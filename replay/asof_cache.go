package replay

import (
	"os"
	"slices"
	"sync"

	"github.com/acl-es/acl/projections"
)

// asOfState is a throw-away read model at one sequence: a copy of a checkpoint with the events
// after it replayed, and an engine over it.
type asOfState struct {
	tenant string
	seq    uint64
	dir    string
	db     *projections.DB
	engine *projections.Engine

	ready chan struct{} // closed once built (or failed: err)
	err   error
	refs  int  // readers holding it; guarded by the cache's mu
	gone  bool // evicted: closed when the last reader releases it
}

func (st *asOfState) close() {
	if st.db != nil {
		st.db.Close()
	}
	if st.dir != "" {
		os.RemoveAll(st.dir)
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

	mu    sync.Mutex
	max   int
	bySeq map[stateKey]*asOfState
	order []stateKey // least recently used first
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, bySeq: map[stateKey]*asOfState{}}
}

// acquire returns the state at seq, building it with build when it is not cached, and a release
// function the caller must call when done with it.
func (c *stateCache) acquire(seq stateKey, build func(st *asOfState) error) (*asOfState, func(), error) {
	c.mu.Lock()
	st := c.bySeq[seq]
	if st != nil {
		st.refs++
		c.touch(seq)
		c.mu.Unlock()
		<-st.ready
	} else {
		st = &asOfState{tenant: seq.tenant, seq: seq.seq, ready: make(chan struct{}), refs: 1}
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

// closeLater closes a state off the query's path: closing Pebble and removing the copy's files
// takes milliseconds that no answer waits for.
func (c *stateCache) closeLater(st *asOfState) {
	c.closing.Add(1)
	go func() {
		defer c.closing.Done()
		st.close()
	}()
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
