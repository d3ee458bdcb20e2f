package replay

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
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
// stays within its bytes, and replacing states it holds, over
// and over, drops none: their old entries are the garbage its cleaning frees.
func TestAuditCacheEvicts(t *testing.T) {
	c := newAuditCache(1000 * (cacheIndexEntry + 19))
	for i := range 10_000 {
		// 6 bytes of key, 11 of state (kind 1+5, roles 1, first 3, removed 1), 2 of lengths
		c.put(fmt.Sprintf("k%05d", i), &principalState{Kind: "staff", First: 1<<20 + uint64(i)})
		if c.bytes() > c.max {
			t.Fatalf("after %d puts the cache takes %d bytes, bound %d", i+1, c.bytes(), c.max)
		}
		var got principalState
		if !c.get(fmt.Sprintf("k%05d", i), &got) || got.First != 1<<20+uint64(i) {
			t.Fatalf("the state just put is not held: %+v", got)
		}
	}
	heldNow := func() map[string]bool {
		held := map[string]bool{}
		for i := range 10_000 {
			if k := fmt.Sprintf("k%05d", i); c.has(k) {
				held[k] = true
			}
		}
		if len(held) < 700 || len(held) != c.len() {
			t.Fatalf("a full cache of room for 1000 holds %d states (%d in its index)", len(held), c.len())
		}
		return held
	}
	// Replacing states drops some while the held ones take more than the share a cleaning
	// keeps; after that the cache holds the same states however often they change.
	for round := 0; c.full(); round++ {
		if round == 10 {
			t.Fatalf("10 rounds of replacing left the cache full: %d states", c.len())
		}
		for k := range heldNow() {
			if c.has(k) { // not dropped by this round's cleanings
				c.put(k, &principalState{Kind: "staff", First: 1})
			}
		}
	}
	held, dropped := heldNow(), c.dropped
	for round := range 20 {
		for k := range held {
			c.put(k, &principalState{Kind: "staff", First: uint64(round)})
		}
	}
	if c.dropped != dropped {
		t.Fatalf("replacing held states dropped %d", c.dropped-dropped)
	}
	var got principalState
	for k := range held {
		if !c.get(k, &got) || got.First != 19 {
			t.Fatalf("%s: %+v after replacing it, held %v", k, got, c.has(k))
		}
	}
	if c.len() != len(held) || c.bytes() > c.max {
		t.Fatalf("replacing held states left %d of %d in %d bytes", c.len(), len(held), c.bytes())
	}
}

// TestAuditCacheModel: random puts (some too large to hold) and gets against a map: a get finds
// the state last put under its key or nothing, never an older one, and two keys of one hash
// cost a miss, not the other's state.
func TestAuditCacheModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	c := newAuditCache(64 << 10)
	model := map[string]uint64{}
	for i := range 200_000 {
		k := fmt.Sprintf("acme\x00P\x00p-%05d\x00", rnd.IntN(2000))
		if rnd.IntN(2) == 0 {
			var roles []string
			for range rnd.IntN(4) {
				roles = append(roles, "role")
			}
			if rnd.IntN(500) == 0 {
				roles = append(roles, strings.Repeat("x", c.segSize)) // never held
			}
			c.put(k, &principalState{Kind: "staff", Roles: roles, First: uint64(i)})
			model[k] = uint64(i)
			continue
		}
		var got principalState
		if c.get(k, &got) && got.First != model[k] {
			t.Fatalf("get %s: state of %d, last put at %d", k, got.First, model[k])
		}
	}
	if c.len() == 0 || c.bytes() > c.max {
		t.Fatalf("the cache holds %d states in %d bytes, bound %d", c.len(), c.bytes(), c.max)
	}
	a, b := "acme\x00P\x00a\x00", "acme\x00P\x00b\x00"
	c.put(a, &principalState{Kind: "staff", First: 1})
	c.idx[maphash.String(c.seed, b)] = c.idx[maphash.String(c.seed, a)] // b's hash as a's
	var got principalState
	if c.get(b, &got) || c.has(b) {
		t.Fatalf("a key found another's entry: %+v", got)
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
	eventstest.WaitFor(t, 30*time.Second, func() error {
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
	if a.cache.len() == 0 {
		t.Fatal("nothing cached to drop")
	}
	a.DropCache()
	if a.cache.len() != 0 || a.cache.bytes() != 0 {
		t.Fatalf("after the drop the cache holds %d states in %d bytes", a.cache.len(), a.cache.bytes())
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

// TestAuditWarmAfterReopen: a reopened index fills its cache from its states once batches read
// states from Pebble (with a cache of room for all, and for a part: it stops when full), every
// state it holds is then the committed one, and the index equals one written in one go. It
// fails without the filling (the cache holds no more than the batches touched).
func TestAuditWarmAfterReopen(t *testing.T) {
	msgs, load := auditStream(6000) // 4,500 records, 300 principals, then the commands mix
	whole := filepath.Join(t.TempDir(), "whole")
	if err := auditApply(t, whole, rand.New(rand.NewPCG(1, 2)), msgs).Close(); err != nil {
		t.Fatal(err)
	}
	for _, room := range []int{1 << 20, 128 << 10} {
		dir := filepath.Join(t.TempDir(), "audit")
		rnd := rand.New(rand.NewPCG(3, uint64(room)))
		if err := auditApply(t, dir, rnd, msgs[:load]).Close(); err != nil {
			t.Fatal(err)
		}
		a, err := OpenAudit(dir)
		if err != nil {
			t.Fatal(err)
		}
		a.cache = newAuditCache(room)
		touched := map[string]bool{}
		for i, n := load, 0; i < len(msgs); n++ {
			j := min(len(msgs), i+1+rnd.IntN(8))
			dry := a.pb.NewBatch()
			w := newAuditWriter(a.pb, dry, a.cache, a.states) // which states the batch touches
			for _, m := range msgs[i:j] {
				if err := w.apply(m); err != nil {
					t.Fatal(err)
				}
			}
			for k := range w.touched {
				touched[k] = true
			}
			dry.Close()
			if err := a.ApplyMessages(msgs[i:j]); err != nil {
				t.Fatal(err)
			}
			if n%40 == 0 {
				auditCacheCommitted(t, a)
			}
			i = j
		}
		auditCacheCommitted(t, a)
		if full := room < 1<<20; full != a.cache.full() || (!full && a.cache.len() < 2*len(touched)) {
			t.Errorf("room %d: the cache holds %d states after batches that touched %d (full %v)", room, a.cache.len(), len(touched), a.cache.full())
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if r, err := Verify(dir, whole); err != nil || !r.OK() {
			t.Fatalf("room %d: verify against the index written in one go: %+v, %v", room, r, err)
		}
	}
}

// auditCacheCommitted fails unless every state a's cache holds is the one a's Pebble holds.
func auditCacheCommitted(t *testing.T, a *Audit) {
	t.Helper()
	it, err := a.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := string(it.Key())
		if !a.cache.has(k) {
			continue
		}
		var cached, stored any
		switch k[strings.IndexByte(k, sep)+1] {
		case tagPrincipal:
			cached, stored = new(principalState), new(principalState)
		case tagRecord:
			cached, stored = new(recordState), new(recordState)
		default:
			cached, stored = new(tenantState), new(tenantState)
		}
		if !a.cache.get(k, cached) || decodeState(it.Value(), stored) != nil || !reflect.DeepEqual(cached, stored) {
			t.Fatalf("%q: cached %+v, stored %+v", k, cached, stored)
		}
	}
}

// TestAuditWritesChangedStates: a batch writes the states it changed, not those it only read:
// an assignment to a case that an invoice links to reads the tenant's state (which types imply
// their client's) and the invoice's (its client), and writes neither. It fails when flush writes
// every state a batch touched.
func TestAuditWritesChangedStates(t *testing.T) {
	var msgs []events.Message
	emit := func(ref events.AggregateRef, d events.Data) {
		seq := uint64(len(msgs) + 1)
		e, err := events.New(events.Meta{Tenant: "acme", Aggregate: ref, Actor: "admin",
			CommandID: fmt.Sprintf("00000000-0000-7000-8000-%012d", seq), Time: time.Unix(int64(seq), 0)}, d)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = seq
		msgs = append(msgs, events.Message{Seq: seq, Time: e.Time, Events: []events.Envelope{e}})
	}
	preset, err := aggregates.Preset("trackops")
	if err != nil {
		t.Fatal(err)
	}
	emit(events.TenantRef("acme"), preset)
	emit(events.PrincipalRef("bob"), events.PrincipalRegisteredV1{Principal: "bob", Kind: "staff", Email: "b@x.test"})
	emit(events.RecordAggregate("case", "c1"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "case", ID: "c1", Client: "cl1"}})
	emit(events.RecordAggregate("invoice", "i1"), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "invoice", ID: "i1",
		Client: "cl2", Links: []events.RecordRef{{Type: "case", ID: "c1"}}}})
	emit(events.RecordAggregate("case", "c1"), events.RecordAssignedV2{Principal: "bob", Relation: "assignee"})
	a, err := OpenAudit(filepath.Join(t.TempDir(), "audit"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.ApplyMessages(msgs[:len(msgs)-1]); err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyMessages(msgs[len(msgs)-1:]); err != nil {
		t.Fatal(err)
	}
	var got []string
	for r := a.batch.Reader(); ; {
		_, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, strings.ReplaceAll(string(k), "\x00", "/"))
	}
	want := []string{"!applied", "acme/R/case/c1/", "acme/p/bob////////\x05",
		"acme/r/case/c1////////\x05", "acme/r/client/cl2////////\x05",
		"acme/r/invoice/i1////////\x05"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the batch wrote\n%q\nwant\n%q", got, want)
	}
}
