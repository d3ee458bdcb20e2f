package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestStateFilter: the filter never calls absent a key it was given, calls absent most keys it
// was not once it knows, and none before.
func TestStateFilter(t *testing.T) {
	const n = 20_000
	f := newStateFilter(n * 16)
	key := func(i int) []byte { return recordStateKey("acme", "case", fmt.Sprintf("case-%08d", i)) }
	for i := range n {
		f.add(key(i))
	}
	if f.absent(key(n + 1)) {
		t.Fatal("absent before the filter knows every key")
	}
	f.known.Store(true)
	for i := range n {
		if f.absent(key(i)) {
			t.Fatalf("the filter lost %s", key(i))
		}
	}
	claimed := 0
	for i := n; i < 2*n; i++ {
		if !f.absent(key(i)) {
			claimed++
		}
	}
	if claimed > n/50 {
		t.Errorf("the filter claims %d of %d keys it was not given", claimed, n)
	}
}

// TestAuditCacheEvicts: a full cache drops one state for each new one instead of starting over,
// and replacing a state it holds drops none.
func TestAuditCacheEvicts(t *testing.T) {
	c := newAuditCache(100)
	for i := range 1000 {
		c.put(fmt.Sprint(i), &recordState{First: uint64(i)})
		if want := min(i+1, 100); len(c.m) != want {
			t.Fatalf("after %d puts the cache holds %d states, want %d", i+1, len(c.m), want)
		}
	}
	for k := range c.m {
		c.put(k, &recordState{})
	}
	if len(c.m) != 100 {
		t.Fatalf("replacing held states left %d, want 100", len(c.m))
	}
}

// TestAuditReopenEqualsRebuild: an index written in batches of random sizes with a cache of a few
// states (so that most states come from the filter or Pebble), closed halfway and reopened (its
// filter then filled by the scan of its state keys), is byte for byte the index rebuilt from the
// stream in one pass. It fails when the filter calls absent a state the reopened index holds.
func TestAuditReopenEqualsRebuild(t *testing.T) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, 23).run(400)
	s.sync(t)
	msgs := s.d.msgs
	dir := filepath.Join(t.TempDir(), "audit")
	rnd := rand.New(rand.NewPCG(5, 6))
	apply := func(from, to int, waitScan bool) {
		a, err := OpenAudit(dir)
		if err != nil {
			t.Fatal(err)
		}
		if waitScan {
			<-a.scanned
			if !a.states.known.Load() {
				t.Fatal("the state scan of the reopened index did not finish")
			}
		}
		a.cache = newAuditCache(3)
		for i := from; i < to; {
			j := min(to, i+1+rnd.IntN(8))
			if err := a.ApplyMessages(msgs[i:j]); err != nil {
				t.Fatal(err)
			}
			i = j
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	half := len(msgs) / 2
	apply(0, half, false)
	apply(half, len(msgs)-10, true)
	apply(len(msgs)-10, len(msgs), false) // reopened while its scan may still run
	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	seq := msgs[len(msgs)-1].Seq
	if _, err := Rebuild(context.Background(), s.env.Store, rebuilt, ModelAudit, seq, nil); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(dir, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Keys < 100 {
		t.Errorf("verify: %d keys, %d differences: %+v", r.Keys, r.Differences, r.Listed)
	}
}
