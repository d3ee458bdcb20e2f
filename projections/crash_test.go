package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

var errCrash = errors.New("test: crash before commit")

// onePass builds the read model of msgs in a single pass.
func onePass(t *testing.T, msgs []events.Message) *DB {
	t.Helper()
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, msgs, len(msgs))
	return db
}

// sameContents compares every key and value of two read models.
func sameContents(t *testing.T, a, b *DB) {
	t.Helper()
	ia, err := a.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ia.Close()
	ib, err := b.pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	n := 0
	okA, okB := ia.First(), ib.First()
	for ; okA && okB; okA, okB = ia.Next(), ib.Next() {
		if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
			t.Fatalf("entry %d differs:\n %q = %q\n %q = %q", n, ia.Key(), ia.Value(), ib.Key(), ib.Value())
		}
		n++
	}
	if okA || okB {
		t.Fatalf("after %d equal entries one model has more (a %v, b %v)", n, okA, okB)
	}
	if n < 1000 {
		t.Fatalf("only %d entries: the history is too small to compare anything", n)
	}
}

// TestCrashResume stops the projector at random points, including after a batch is built and
// before it is committed, sometimes redelivering messages it already applied, and restarts it
// (reopening Pebble) or goes on with the same projector; the result must equal one pass.
func TestCrashResume(t *testing.T) {
	g := newGenerator(7, "acme", "beta")
	for range 2000 {
		g.step()
	}
	msgs := messages(g.items)
	want := onePass(t, msgs)
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			dir := t.TempDir()
			db, err := OpenDB(dir, DBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewProjector(db, nil)
			if err != nil {
				t.Fatal(err)
			}
			crashes := 0
			for p.Applied() < uint64(len(msgs)) {
				// Redeliver up to 20 applied messages, as a consumer restarting early would.
				from := max(int(p.Applied())-rng.IntN(20), 0)
				to := min(from+1+rng.IntN(300), len(msgs))
				// A crash can only happen when there is something new to commit.
				crash := rng.IntN(3) == 0 && to > int(p.Applied())
				p.beforeCommit = func(uint64) error {
					if crash {
						return errCrash
					}
					return nil
				}
				err := p.ApplyMessages(msgs[from:to])
				if crash != errors.Is(err, errCrash) {
					t.Fatalf("apply %d..%d: %v (crash %v)", from, to, err, crash)
				}
				if !crash {
					continue
				}
				crashes++
				if rng.IntN(2) == 0 {
					continue // the same projector goes on: its cached states must be clean
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				if db, err = OpenDB(dir, DBOptions{}); err != nil {
					t.Fatal(err)
				}
				if p, err = NewProjector(db, nil); err != nil {
					t.Fatal(err)
				}
			}
			defer db.Close()
			if crashes == 0 {
				t.Fatal("no crash happened")
			}
			sameContents(t, want, db)
		})
	}
}

// TestCrashResumeFollowing crashes a projector that follows the real stream: the history is
// appended in chunks; after each, a projector is started on the reopened DB and, in about half
// the rounds, fails its first batch before committing it. The last round catches up, and the
// result must equal one pass.
func TestCrashResumeFollowing(t *testing.T) {
	env := eventstest.Start(t)
	ap := newAppender(env.Store)
	g := newGenerator(11, "acme", "beta")
	for range 1500 {
		g.step()
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 5))
	var msgs []events.Message
	crashes := 0
	const chunks = 8
	for i := range chunks {
		part := g.items[i*len(g.items)/chunks : (i+1)*len(g.items)/chunks]
		msgs = append(msgs, ap.add(t, part)...)
		crash := i < chunks-1 && rng.IntN(2) == 0
		if crash {
			crashes++
		}
		runOnce(t, dir, env.Store, msgs[len(msgs)-1].Seq, crash)
	}
	if crashes == 0 {
		t.Fatal("no crash was tested")
	}
	db := openDBAt(t, dir)
	sameContents(t, onePass(t, msgs), db)
}

// runOnce runs a projector on the DB in dir until it has applied last or, when crash is set,
// until its first batch fails before committing.
func runOnce(t *testing.T, dir string, st *events.Store, last uint64, crash bool) {
	t.Helper()
	db, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := NewProjector(db, st)
	if err != nil {
		t.Fatal(err)
	}
	if crash {
		p.beforeCommit = func(uint64) error { return errCrash }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if crash {
		if err := <-done; !errors.Is(err, errCrash) {
			t.Fatalf("projector at %d: %v, want the crash", p.Applied(), err)
		}
		return
	}
	werr := p.WaitFor(ctx, last)
	cancel()
	if err := <-done; werr != nil || err != nil {
		t.Fatalf("projector at %d, want %d: wait %v, run %v", p.Applied(), last, werr, err)
	}
}

// TestAppliedSequenceInBatch checks that the applied sequence lives in Pebble with the effects:
// a projector reopened on the DB starts where the last committed batch ended.
func TestAppliedSequenceInBatch(t *testing.T) {
	g := newGenerator(3, "acme")
	for range 50 {
		g.step()
	}
	msgs := messages(g.items)
	dir := t.TempDir()
	db := openDBAt(t, dir)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		upto  int
		crash bool
		want  uint64
	}{
		{"first batch", 10, false, 10},
		{"abandoned batch", 30, true, 10},
		{"redelivered and new", 25, false, 25},
		{"the rest", len(msgs), false, uint64(len(msgs))},
	}
	from := 0
	for _, tc := range tests {
		p.beforeCommit = func(uint64) error {
			if tc.crash {
				return errCrash
			}
			return nil
		}
		err := p.ApplyMessages(msgs[from:tc.upto])
		if tc.crash != errors.Is(err, errCrash) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := db.Applied()
		if err != nil || got != tc.want || p.Applied() != tc.want {
			t.Fatalf("%s: applied %d in db, %d in projector (%v); want %d", tc.name, got, p.Applied(), err, tc.want)
		}
		if !tc.crash {
			from = tc.upto - 5 // the next slice redelivers five
		}
	}
}
