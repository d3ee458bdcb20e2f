package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
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

// TestAuditCacheEvicts: a full cache drops states for each new one instead of starting over,
// stays within its bytes, and replacing a state it holds drops none.
func TestAuditCacheEvicts(t *testing.T) {
	c := newAuditCache(100 * (cacheEntryOverhead + 17))
	for i := range 1000 {
		// 6 bytes of key, 11 of state: kind 1+5, roles 1, first 3, removed 1
		c.put(fmt.Sprintf("k%05d", i), &principalState{Kind: "staff", First: 1<<20 + uint64(i)})
		if want := min(i+1, 100); len(c.m) != want || c.size > c.max {
			t.Fatalf("after %d puts the cache holds %d states in %d bytes, want %d within %d", i+1, len(c.m), c.size, want, c.max)
		}
	}
	for k := range c.m {
		c.put(k, &principalState{Kind: "staff", First: 7})
	}
	if len(c.m) != 100 {
		t.Fatalf("replacing held states left %d, want 100", len(c.m))
	}
	var got principalState
	for k := range c.m {
		if !c.get(k, &got) || got.First != 7 {
			t.Fatalf("%s: %+v after replacing it", k, got)
		}
	}
}

// TestAuditCacheRoundTrip: a state comes out of the cache equal to what went in, nil slices
// nil and empty ones empty (their JSON differs), and a truncated entry is refused.
func TestAuditCacheRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	strs := []string{"", "bob", "case-00000001", "\x00\xff", "é", strings.Repeat("x", 300)}
	str := func() string { return strs[rnd.IntN(len(strs))] }
	strSlice := func() []string {
		if rnd.IntN(3) == 0 {
			return nil
		}
		out := []string{}
		for range rnd.IntN(4) {
			out = append(out, str())
		}
		return out
	}
	c := newAuditCache(1 << 20)
	for i := range 3000 {
		var in, out any
		switch i % 3 {
		case 0:
			in, out = &tenantState{Features: strSlice(), ImplyTypes: strSlice()}, &tenantState{}
		case 1:
			in, out = &principalState{Kind: str(), Roles: strSlice(), First: rnd.Uint64(), Removed: rnd.Uint64N(3) << 40}, &principalState{}
		default:
			r := &recordState{Exists: rnd.IntN(2) == 0, Client: str(), Owner: str(), LinkedBy: rnd.IntN(5) - 2,
				First: rnd.Uint64N(1 << 40), Removed: rnd.Uint64N(3) << 50}
			if rnd.IntN(3) > 0 {
				r.Assignees = []events.Assignee{}
				for range rnd.IntN(4) {
					r.Assignees = append(r.Assignees, events.Assignee{Principal: str(), Relation: str()})
				}
			}
			if rnd.IntN(3) > 0 {
				r.Links = []events.RecordRef{}
				for range rnd.IntN(4) {
					r.Links = append(r.Links, events.RecordRef{Type: str(), ID: str()})
				}
			}
			in, out = r, &recordState{}
		}
		k := fmt.Sprint(i)
		c.put(k, in)
		if !c.get(k, out) || !reflect.DeepEqual(in, out) {
			t.Fatalf("put %#v, got %#v", in, out)
		}
		enc := string(encodeCached(nil, in))
		if decodeCached(enc[:len(enc)-1], out) {
			t.Fatalf("a truncated entry of %#v decoded", in)
		}
	}
}

// TestAuditReopenEqualsRebuild: an index written in batches of random sizes with a cache of a few
// states (so that most states come from the filter or Pebble), closed halfway and reopened (its
// filter then filled by the scan of its state keys), is byte for byte the index rebuilt from the
// stream in one pass. It fails when the filter calls absent a state the reopened index holds.
func TestAuditReopenEqualsRebuild(t *testing.T) {
	s, msgs, dir, rnd := auditHistory(t, 23, 5, 6)
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
		a.cache = newAuditCache(4 * 100) // two or three states
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
	auditEqualsRebuild(t, s, dir)
}

// auditApply opens the index in dir and applies msgs in batches of random sizes.
func auditApply(t *testing.T, dir string, rnd *rand.Rand, msgs []events.Message) *Audit {
	t.Helper()
	a, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); {
		j := min(len(msgs), i+1+rnd.IntN(8))
		if err := a.ApplyMessages(msgs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	return a
}

// auditEqualsRebuild fails unless the index in dir is byte for byte the index rebuilt from
// s's stream up to its last message.
func auditEqualsRebuild(t *testing.T, s *stack, dir string) {
	t.Helper()
	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	seq := s.d.msgs[len(s.d.msgs)-1].Seq
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

// auditResumes reopens the index in dir, fails unless it is at applied sequence want, follows the
// whole stream again (ApplyMessages skips what it holds) and compares it with the rebuild.
func auditResumes(t *testing.T, s *stack, dir string, rnd *rand.Rand, want uint64) {
	t.Helper()
	b, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Applied(); got != want {
		t.Fatalf("reopened at %d, want %d", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := auditApply(t, dir, rnd, s.d.msgs).Close(); err != nil {
		t.Fatal(err)
	}
	auditEqualsRebuild(t, s, dir)
}

// TestAuditCrashResumes: the index writes no WAL, so a crash loses its memtables. Whatever it
// lost is whole batches after its last flush: reopened, it is at the flush's sequence, and
// following the stream from there gives the index rebuilt from the stream. It fails if a batch
// were split by a flush (applied sequence and entries out of step) or Close did not flush.
func TestAuditCrashResumes(t *testing.T) {
	s, msgs, dir, rnd := auditHistory(t, 29, 7, 8)
	third := len(msgs) / 3
	a := auditApply(t, dir, rnd, msgs[:third])
	if err := a.pb.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed := a.Applied()
	for i := third; i < 2*third; i++ {
		if err := a.ApplyMessages(msgs[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if a.Applied() <= flushed {
		t.Fatalf("applied %d after the flush at %d", a.Applied(), flushed)
	}
	// The crash: Pebble closed without the flush of Close.
	close(a.stopScan)
	<-a.scanned
	if err := a.pb.Close(); err != nil {
		t.Fatal(err)
	}
	auditResumes(t, s, dir, rnd, flushed) // at the flush's sequence
}

// TestAuditOpensWALIndex: an index written with a WAL by the previous release and closed with
// its last batches in the WAL only opens with them, goes on without a WAL, and equals the
// rebuild; of its WAL files, none with a batch is left once it has been reopened (Pebble still
// creates an empty one at each open).
func TestAuditOpensWALIndex(t *testing.T) {
	s, msgs, dir, rnd := auditHistory(t, 31, 9, 10)
	half := len(msgs) / 2
	auditWAL = true
	a := auditApply(t, dir, rnd, msgs[:half])
	want := a.Applied()
	err := a.Close()
	auditWAL = false
	if err != nil {
		t.Fatal(err)
	}
	if logs, _ := filepath.Glob(filepath.Join(dir, "*.log")); len(logs) == 0 {
		t.Fatal("the previous release's index has no WAL")
	}
	auditResumes(t, s, dir, rnd, want) // with the WAL's batches
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 64 {
			t.Errorf("WAL %s of %d bytes left", l, fi.Size())
		}
	}
}

// auditHistory is a stack that stored 400 random commands (seed), their messages, a directory
// for an audit index and a random source (pcg1, pcg2) for how the test applies them.
func auditHistory(t *testing.T, seed, pcg1, pcg2 uint64) (*stack, []events.Message, string, *rand.Rand) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, seed).run(400)
	s.sync(t)
	return s, s.d.msgs, filepath.Join(t.TempDir(), "audit"), rand.New(rand.NewPCG(pcg1, pcg2))
}

// TestAuditFanoutBehindAndCrash: an audit index that starts empty, behind the projector and the
// stack's index, which share one consumer (events.Fanout), catches up alone through the fanout
// and joins it; it crashes (Pebble closed without a flush) halfway through the stream while
// the others go on, resumes through the fanout from what it had flushed while commands keep
// coming, and equals the index rebuilt from the stream.
func TestAuditFanoutBehindAndCrash(t *testing.T) {
	s := startStack(t, Options{})
	h := newRandomHistory(s.d, 37)
	h.run(300)
	s.sync(t)
	dir := filepath.Join(t.TempDir(), "audit")
	a, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	crashAt := s.d.seq / 2
	errCrash := errors.New("crash")
	err = s.fan.Follow(context.Background(), 1, func(msgs []events.Message) error {
		for i, m := range msgs {
			if m.Seq == crashAt {
				if err := a.ApplyMessages(msgs[:i]); err != nil {
					return err
				}
				if err := a.pb.Flush(); err != nil {
					return err
				}
				return errCrash
			}
		}
		return a.ApplyMessages(msgs)
	})
	if !errors.Is(err, errCrash) {
		t.Fatalf("follow = %v; want the crash", err)
	}
	close(a.stopScan) // the crash: no flush at close
	<-a.scanned
	if err := a.pb.Close(); err != nil {
		t.Fatal(err)
	}
	h.run(50) // the others go on meanwhile
	b, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Applied(); got != crashAt-1 {
		t.Fatalf("reopened at %d; want %d", got, crashAt-1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx, s.fan, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	}()
	h.run(150) // live: it catches up while the stream grows
	s.sync(t)
	want := s.d.seq
	eventstest.WaitFor(t, 10*time.Second, func() error {
		if got := b.Applied(); got < want {
			return fmt.Errorf("resumed index at %d; want %d", got, want)
		}
		return nil
	})
	cancel()
	<-done
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	auditEqualsRebuild(t, s, dir)
}

// TestAuditDropCache: the cache dropped while batches are applied (an idle acld's drop, from
// another goroutine) leaves it empty, and the index is still byte for byte its rebuild.
func TestAuditDropCache(t *testing.T) {
	s, msgs, dir, rnd := auditHistory(t, 29, 5, 6)
	a, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	half := len(msgs) / 2
	for i := 0; i < half; {
		j := min(half, i+1+rnd.IntN(8))
		if err := a.ApplyMessages(msgs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	if len(a.cache.m) == 0 {
		t.Fatal("nothing cached to drop")
	}
	a.DropCache()
	if len(a.cache.m) != 0 || a.cache.size != 0 {
		t.Fatalf("after the drop the cache holds %d states in %d bytes", len(a.cache.m), a.cache.size)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			a.DropCache()
		}
	}()
	for i := half; i < len(msgs); {
		j := min(len(msgs), i+1+rnd.IntN(8))
		if err := a.ApplyMessages(msgs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	<-done
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	auditEqualsRebuild(t, s, dir)
}
