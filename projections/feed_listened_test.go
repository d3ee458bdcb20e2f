package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/nats-io/nats.go"
)

// listenedFeed is a projector with a change feed asking an embedded server who listens
// (events.ChangesListeners), over a random history of tenant acme applied before the feed
// went live; what the feed publishes is recorded, not sent.
type listenedFeed struct {
	env  *eventstest.Env
	nc   *nats.Conn
	g    *generator
	db   *DB
	p    *Projector
	feed *Feed
	seq  uint64 // the last message applied

	mu        sync.Mutex
	published []aggregates.Change
	gaps      []Gap
}

func startListenedFeed(t *testing.T) *listenedFeed {
	t.Helper()
	lf := &listenedFeed{env: eventstest.Start(t), g: newGenerator(31, "acme")}
	lf.nc = lf.env.Connect(t)
	for range 300 {
		lf.g.step()
	}
	history := messages(lf.g.items)
	lf.db = openDB(t)
	var err error
	if lf.p, err = NewProjector(lf.db, nil); err != nil {
		t.Fatal(err)
	}
	applyAll(t, lf.p, history, 100)
	lf.seq = history[len(history)-1].Seq
	// Live from here on, as after Run caught up with the stream.
	lf.p.target.Store(lf.seq)
	lf.p.started.Store(true)
	listeners, err := events.NewChangesListeners(lf.env.Server)
	if err != nil {
		t.Fatal(err)
	}
	lf.feed = NewFeed(NewEngine(lf.db, lf.p, EngineOptions{}), FeedOptions{CPU: -1, Listeners: listeners,
		Publish: func(_ context.Context, tenant, tail, _ string, body []byte) error {
			lf.mu.Lock()
			defer lf.mu.Unlock()
			if tail == "gap" {
				var g Gap
				if err := json.Unmarshal(body, &g); err != nil {
					return err
				}
				lf.gaps = append(lf.gaps, g)
				return nil
			}
			var c aggregates.Change
			if err := json.Unmarshal(body, &c); err != nil {
				return err
			}
			lf.published = append(lf.published, c)
			return nil
		}})
	lf.p.SetFeed(lf.feed)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lf.feed.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
		lf.feed.Close()
	})
	return lf
}

// next returns the messages of n random steps after those applied, stamped now (live).
func (lf *listenedFeed) next(n int) []events.Message {
	from := len(lf.g.items)
	for range n {
		lf.g.step()
	}
	msgs := messages(lf.g.items)[from:]
	for i := range msgs {
		msgs[i].Time = time.Now()
	}
	return msgs
}

// apply applies msgs in one call, as a batch the store delivers, and waits for the feed.
func (lf *listenedFeed) apply(t *testing.T, msgs []events.Message) {
	t.Helper()
	if err := lf.p.ApplyMessages(msgs); err != nil {
		t.Fatal(err)
	}
	lf.seq = msgs[len(msgs)-1].Seq
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lf.feed.WaitFor(ctx, lf.seq); err != nil {
		t.Fatalf("feed published up to %d, want %d: %v", lf.feed.Published(), lf.seq, err)
	}
}

// expectedChanges derives the changes of msgs one message at a time, each over a snapshot of
// the read model before it, as the feed does for a message it hands over alone: on a second
// read model, built from the same history.
func expectedChanges(t *testing.T, history, msgs []events.Message) []aggregates.Change {
	t.Helper()
	db := openDB(t)
	p, err := NewProjector(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, p, history, 100)
	e := NewEngine(db, p, EngineOptions{})
	var out []aggregates.Change
	for _, m := range msgs {
		evs, _, err := decodeBatch([]events.Message{m}, m.Seq-1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			cs, err := e.changesOf(db.pb.NewSnapshot(), m.Seq, evs, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, cs...)
		}
		applyAll(t, p, []events.Message{m}, 1)
	}
	return out
}

// TestChangeFeedSubscribedBeforeCommit is the change feed's promise to a service that
// subscribes, then reads its access at seq S, then applies every change after S (SPEC section
// 8), in the worst moment: the service subscribes while the projector commits a run of live
// messages, after anything the feed or the projector learned about the subscriptions before
// the commit, and its read answers a seq below the run (the run is not committed yet). Every
// change of the run to a principal it listens to must be published, or a gap covering it.
// 2d70a93 judged such a run unheard from a Refresh made before the commit and published
// neither (this fails on it); the subscription is asked about after the commit.
func TestChangeFeedSubscribedBeforeCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subject func(principal string) string
	}{
		{"principal", func(p string) string { return events.ChangesSubject("acme", p) }},
		{"tenant", func(string) string { return events.ChangesPrefix + ".acme.>" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lf := startListenedFeed(t)
			// A first live run with nobody listening: nothing published.
			lf.apply(t, lf.next(20))
			if n := lf.feed.Changes(); n != 0 {
				t.Fatalf("nobody listening: %d changes published", n)
			}
			applied := messages(lf.g.items)
			msgs := lf.next(40)
			want := expectedChanges(t, applied, msgs)
			if len(want) == 0 {
				t.Fatal("the run changes nobody's access: it proves nothing")
			}
			// The principal the run changes most often.
			count := map[string]int{}
			principal := want[0].Principal
			for _, c := range want {
				if count[c.Principal]++; count[c.Principal] > count[principal] {
					principal = c.Principal
				}
			}
			var subscribedAt uint64
			lf.p.beforeCommit = func(uint64) error {
				if subscribedAt != 0 {
					return nil
				}
				// The service subscribes, then reads its access: the read model answers the seq
				// it has committed, below the run's.
				sub, err := lf.nc.SubscribeSync(tc.subject(principal))
				if err != nil {
					return err
				}
				t.Cleanup(func() { sub.Unsubscribe() })
				if err := lf.nc.Flush(); err != nil {
					return err
				}
				subscribedAt = lf.p.Applied()
				return nil
			}
			lf.apply(t, msgs)
			lf.p.beforeCommit = nil
			if subscribedAt >= msgs[0].Seq {
				t.Fatalf("subscribed after seq %d, within the run from %d", subscribedAt, msgs[0].Seq)
			}
			lf.mu.Lock()
			defer lf.mu.Unlock()
			got := map[string]bool{}
			for _, c := range lf.published {
				got[changeKey(c)] = true
			}
			missing := 0
			for _, c := range want {
				if c.Principal != principal && tc.name == "principal" {
					continue
				}
				if got[changeKey(c)] || slices.ContainsFunc(lf.gaps, func(g Gap) bool { return g.Tenant == c.Tenant && g.From <= c.Seq && c.Seq <= g.To }) {
					continue
				}
				missing++
				t.Errorf("change of %s at seq %d (event %s): neither published nor in a gap", c.Principal, c.Seq, c.Event)
			}
			t.Logf("%d changes of the run (%d messages from seq %d) expected, %d published, %d gaps, %d missing",
				len(want), len(msgs), msgs[0].Seq, len(lf.published), len(lf.gaps), missing)
		})
	}
}

// changeKey identifies a change and what it says.
func changeKey(c aggregates.Change) string {
	b, _ := json.Marshal(c) // plain types
	return fmt.Sprintf("%d/%s/%s/%s", c.Seq, c.Event, c.Principal, b)
}
