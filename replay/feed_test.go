package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
	"github.com/acl-es/acl/projections"
	"github.com/nats-io/nats.go"
)

// feedStack is a stack whose projector publishes the change feed through the changes stream,
// deriving what the embedded server's subscriptions would receive (events.ChangesListeners),
// and a caller's subscription (the anonymous caller's account) to every change of tenant acme.
type feedStack struct {
	*stack
	feed *projections.Feed
	nc   *nats.Conn // the caller's connection
	subs []*nats.Subscription
	mu   sync.Mutex
	got  []aggregates.Change
}

// feedTestQueue is the feed's queue in a feedStack (projections.FeedOptions.Queue).
const feedTestQueue = 1 << 14

func startFeedStack(t *testing.T) *feedStack {
	return startFeedStackOn(t, events.ChangesPrefix+".acme.>")
}

// startFeedStackOn starts a feedStack whose caller subscribes to subject ("": to nothing yet;
// subscribe does).
func startFeedStackOn(t *testing.T, subject string) *feedStack {
	t.Helper()
	fs := &feedStack{}
	fs.stack = startStackWith(t, Options{}, func(env *eventstest.Env, db *projections.DB, proj *projections.Projector) func() {
		ctx, cancel := context.WithCancel(context.Background())
		changes, err := events.OpenChanges(ctx, env.Conn, 1)
		if err != nil {
			t.Fatal(err)
		}
		listeners, err := events.NewChangesListeners(env.Server)
		if err != nil {
			t.Fatal(err)
		}
		fs.feed = projections.NewFeed(projections.NewEngine(db, proj, projections.EngineOptions{}),
			// A queue above any burst these tests send: on a loaded machine the feed falls
			// behind the projector, and a gap here would be the machine's, not the feed's
			// (TestChangeFeedGapWhenBehind checks gaps with the default queue).
			projections.FeedOptions{Publish: changes.Publish, Flush: changes.Flush, CPU: -1, Listeners: listeners, Queue: feedTestQueue})
		proj.SetFeed(fs.feed)
		done := make(chan error, 1)
		go func() { done <- fs.feed.Run(ctx) }()
		fs.nc = env.Connect(t)
		if subject != "" {
			fs.subscribe(t, subject)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feed: %v", err)
			}
			fs.feed.Close()
		}
	})
	waitProjectorRunning(t, fs.proj)
	return fs
}

// subscribe subscribes the caller to subject and collects what it receives in fs.got.
func (fs *feedStack) subscribe(t *testing.T, subject string) *nats.Subscription {
	t.Helper()
	sub, err := fs.nc.Subscribe(subject, func(m *nats.Msg) {
		var c aggregates.Change
		if err := json.Unmarshal(m.Data, &c); err != nil {
			t.Errorf("change %s: %v", m.Data, err)
			return
		}
		if strings.HasSuffix(m.Subject, ".gap") {
			t.Errorf("the feed fell behind: %s", m.Data)
			return
		}
		if m.Subject != events.ChangesSubject(c.Tenant, c.Principal) {
			t.Errorf("change of %s/%s on %s", c.Tenant, c.Principal, m.Subject)
		}
		fs.mu.Lock()
		fs.got = append(fs.got, c)
		fs.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.subs = append(fs.subs, sub)
	return sub
}

// published waits until the feed has handled every message written.
func (fs *feedStack) published(t *testing.T) {
	t.Helper()
	fs.sync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fs.feed.WaitFor(ctx, fs.d.seq); err != nil {
		t.Fatalf("feed published up to %d, want %d: %v", fs.feed.Published(), fs.d.seq, err)
	}
}

// waitProjectorRunning waits until proj's Run has started. The feed announces the messages
// after the stream's end as Run found it (live); what a test writes before Run started would
// be caught up silently. Under load the projector's goroutine started after the first
// commands: seq 2 was never announced.
func waitProjectorRunning(t *testing.T, proj *projections.Projector) {
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if !proj.Ready() {
			return errors.New("the projector has not started")
		}
		return nil
	})
}

// changes waits until the feed has published every message written and returns what the
// subscriber received.
func (fs *feedStack) changes(t *testing.T) []aggregates.Change {
	t.Helper()
	fs.published(t)
	// The stream republishes a change before it acknowledges it, and the feed has every
	// acknowledgement: what is missing is only in flight to the subscriber. The server sends
	// the caller's PONG after those changes, so once Flush returns they are all queued on the
	// subscriptions; a subscription counts a change as pending until its handler returned.
	// (Waiting instead for the count to stay put 5 ms, within 2 s, took a handler descheduled
	// on a loaded machine for the end, or gave up while 600 commands' changes were arriving.)
	if err := fs.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		for _, sub := range fs.subs {
			if n, _, err := sub.Pending(); err != nil || n > 0 {
				return fmt.Errorf("%s: %d changes not yet handled (%v)", sub.Subject, n, err)
			}
		}
		return nil
	})
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.got)
}

// access is what the oracle says principal p may do at one moment: its grants as the
// permissions query answers them and, per type, the records it may view.
type oracleAccess struct {
	grants  []aggregates.GrantUse
	visible map[string][]string
}

func oracleAccessOf(w aggregates.World, tenant, p string) oracleAccess {
	a := oracleAccess{grants: []aggregates.GrantUse{}, visible: map[string][]string{}}
	m := w[tenant]
	if m == nil {
		return a
	}
	pr := m.Principals[p]
	if pr == nil || !pr.Exists {
		return a
	}
	a.grants = aggregates.NarrowedGrants(m.T, pr, "")
	for _, perm := range m.T.Policy.Permissions {
		typ, ok := strings.CutSuffix(perm, ".view")
		if !ok {
			continue
		}
		if ids, err := aggregates.Visible(m, p, typ, "view"); err == nil && len(ids) > 0 {
			a.visible[typ] = ids
		}
	}
	return a
}

// fold applies changes, in order, to an access.
func (a oracleAccess) fold(cs []aggregates.Change) oracleAccess {
	out := oracleAccess{grants: slices.Clone(a.grants), visible: map[string][]string{}}
	for typ, ids := range a.visible {
		out.visible[typ] = slices.Clone(ids)
	}
	for _, c := range cs {
		for _, g := range c.Revoked {
			out.grants = slices.DeleteFunc(out.grants, func(h aggregates.GrantUse) bool { return aggregates.SameGrant(g, h) })
		}
		out.grants = append(out.grants, c.Granted...)
		for typ, v := range c.Visible {
			ids := slices.DeleteFunc(out.visible[typ], func(id string) bool { return slices.Contains(v.Lost, id) })
			ids = append(ids, v.Gained...)
			slices.Sort(ids)
			if len(ids) == 0 {
				delete(out.visible, typ)
			} else {
				out.visible[typ] = ids
			}
		}
	}
	return out
}

func (a oracleAccess) String() string {
	var gs []string
	for _, g := range a.grants {
		gs = append(gs, g.Permission+"@"+g.Scope+"("+g.Source+")")
	}
	slices.Sort(gs)
	return fmt.Sprintf("grants %v visible %v", gs, a.visible)
}

// TestChangeFeedFoldsToDiff: over a random history (the as_of tests' generator), every
// principal's change messages of one stream position, applied to its access before that
// position, give its access after it (the pure oracle's grants and visible ids): the feed
// folded in order equals the diff between consecutive sequences. Also end to end: the feed
// folded from the tenant's start equals the diff query between start and end (grants and
// visible counts). And no change is delivered twice.
func TestChangeFeedFoldsToDiff(t *testing.T) {
	for _, seed := range []uint64{7, 8, 9} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testChangeFeedFoldsToDiff(t, seed) })
	}
}

func testChangeFeedFoldsToDiff(t *testing.T, seed uint64) {
	fs := startFeedStack(t)
	h := newRandomHistory(fs.d, seed)
	start := fs.d.seq
	warmUp(fs.d)
	if ok := h.run(600); ok < 200 {
		t.Fatalf("only %d of 600 random commands were accepted", ok)
	}
	got := fs.changes(t)
	seen := map[string]bool{}
	bySeq := map[uint64]map[string][]aggregates.Change{}
	for _, c := range got {
		k := fmt.Sprintf("%d/%s/%s", c.Seq, c.Event, c.Principal)
		if seen[k] {
			t.Errorf("change %s delivered twice", k)
		}
		seen[k] = true
		if bySeq[c.Seq] == nil {
			bySeq[c.Seq] = map[string][]aggregates.Change{}
		}
		bySeq[c.Seq][c.Principal] = append(bySeq[c.Seq][c.Principal], c)
	}
	principals := append([]string{"admin"}, rhPrincipals...)
	prev := fs.d.oracleAt(0)
	changed := 0
	for seq := uint64(1); seq <= fs.d.seq; seq++ {
		next := fs.d.oracleAt(seq)
		for _, p := range principals {
			before, after := oracleAccessOf(prev, "acme", p), oracleAccessOf(next, "acme", p)
			folded := before.fold(bySeq[seq][p])
			if folded.String() != after.String() {
				t.Fatalf("seq %d (%s), %s: before %s\nfolded %s\nafter  %s\nchanges %+v",
					seq, fs.d.msgs[seq-1].Events[0].Type, p, before, folded, after, bySeq[seq][p])
			}
			if before.String() != after.String() {
				changed++
				if len(bySeq[seq][p]) == 0 {
					t.Fatalf("seq %d: %s's access changed and no message told", seq, p)
				}
			}
		}
		prev = next
	}
	t.Logf("%d changes delivered; %d (seq, principal) pairs whose access changed", len(got), changed)
	if changed < 50 {
		t.Fatalf("only %d changes of access in the history: the test proves little", changed)
	}
	// End to end against the diff query.
	ctx := context.Background()
	for _, p := range principals {
		d, err := fs.svc.Diff(ctx, "acme", DiffRequest{Principal: p, From: &Moment{Seq: start}, To: &Moment{Seq: fs.d.seq}})
		if aggregates.ErrorCode(err) == aggregates.CodeNotFound {
			continue // never registered
		}
		if err != nil {
			t.Fatal(err)
		}
		var all []aggregates.Change
		for seq := start + 1; seq <= fs.d.seq; seq++ {
			all = append(all, bySeq[seq][p]...)
		}
		before := oracleAccessOf(fs.d.oracleAt(start), "acme", p)
		folded := before.fold(all)
		added, removed := aggregates.GrantsMinus(folded.grants, before.grants), aggregates.GrantsMinus(before.grants, folded.grants)
		if fmt.Sprint(keys(added)) != fmt.Sprint(keys(d.Added)) || fmt.Sprint(keys(removed)) != fmt.Sprint(keys(d.Removed)) {
			t.Errorf("%s: folded feed adds %v removes %v; diff %v %v", p, keys(added), keys(removed), keys(d.Added), keys(d.Removed))
		}
		for _, vc := range d.Visible {
			b, a := before.visible[vc.Type], folded.visible[vc.Type]
			gained := slices.DeleteFunc(slices.Clone(a), func(id string) bool { return slices.Contains(b, id) })
			lost := slices.DeleteFunc(slices.Clone(b), func(id string) bool { return slices.Contains(a, id) })
			if len(b) != vc.From || len(a) != vc.To || fmt.Sprint(gained) != fmt.Sprint(vc.Gained) || fmt.Sprint(lost) != fmt.Sprint(vc.Lost) {
				t.Errorf("%s %s: folded feed %d -> %d, +%v -%v; diff %d -> %d, +%v -%v", p, vc.Type,
					len(b), len(a), gained, lost, vc.From, vc.To, vc.Gained, vc.Lost)
			}
		}
	}
}

func keys(gs []aggregates.GrantUse) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Permission+"@"+g.Scope+"("+g.Source+")")
	}
	slices.Sort(out)
	return out
}

// warmUp starts a random history's principals able to see something, at every level (most
// random commands change nothing for a principal that is disabled or has no role), and uses
// the link rule (TO-4d) once: a limited staff member assigned to a case an invoice links to.
func warmUp(d *driver) {
	levels := []string{"full", "limited", "full_location", "limited", "full", "limited"}
	for i, p := range rhPrincipals {
		if i == 5 {
			d.must("acme", "admin", &aggregates.RegisterPrincipal{Principal: p, Kind: aggregates.KindClientContact,
				Email: p + "@x.test", Client: aggregatestest.Clients[0]})
			d.must("acme", "admin", &aggregates.AssignRole{Principal: p, Role: "client_contact"})
		} else {
			d.must("acme", "admin", &aggregates.RegisterPrincipal{Principal: p, Kind: aggregates.KindStaff,
				Email: p + "@x.test", Units: []events.UnitRef{aggregatestest.Units[i%len(aggregatestest.Units)]}})
			d.must("acme", "admin", &aggregates.AssignRole{Principal: p, Role: "staff"})
		}
		d.must("acme", "admin", &aggregates.SetAccessLevel{Principal: p, Level: levels[i]})
	}
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: "r0"}})
	d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: "r0",
		Client: aggregatestest.Clients[1], Links: []events.RecordRef{{Type: "case", ID: "r0"}}}})
	d.must("acme", "admin", &aggregates.AssignRecord{Type: "case", ID: "r0", Principal: "p1", Relation: "assignee"})
}

// TestDryRunEffectsEqualDiff: over random histories, before each accepted command is appended,
// the effects a dry run answers (projections.Engine.Effects, what acld gives the command
// service) over its events name exactly the principals whose access the command changes, and
// each effect applied to the principal's access before the command gives its access after it
// (the oracle's grants and visible ids): the dry run's effects equal the diff across the real
// command.
func TestDryRunEffectsEqualDiff(t *testing.T) {
	for _, seed := range []uint64{11, 12} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := startStack(t, Options{})
			engine := projections.NewEngine(s.db, s.proj, projections.EngineOptions{})
			newRandomHistory(s.d, seed)
			principals := append([]string{"admin"}, rhPrincipals...)
			tally := checkDryRuns(t, s, engine, principals)
			warmUp(s.d)
			h := &randomHistory{d: s.d, gen: aggregatestest.NewRandom(seed)}
			if ok := h.run(300); ok < 100 {
				t.Fatalf("only %d of 300 random commands were accepted", ok)
			}
			t.Logf("%d commands' effects checked, %d principals' access changed", tally.checked, tally.changed)
			if tally.changed < 50 {
				t.Fatalf("only %d changes of access: the test proves little", tally.changed)
			}
		})
	}
}

// dryRunTally counts what checkDryRuns checked.
type dryRunTally struct{ checked, changed int }

// checkDryRuns makes s's driver compare, before each accepted command of tenant acme is
// appended, the effects a dry run answers over its events with the oracle's access of each of
// principals before and after the command: each effect applied to the access before gives the
// access after, and exactly the principals whose access changes have one.
func checkDryRuns(t *testing.T, s *stack, engine *projections.Engine, principals []string) *dryRunTally {
	tally := &dryRunTally{}
	s.d.beforeAppend = func(envs []events.Envelope) {
		if envs[0].Tenant != "acme" {
			return
		}
		s.sync(t)
		seq, effs, err := engine.Effects(context.Background(), "acme", s.d.seq, envs)
		if err != nil {
			t.Fatalf("effects of %s: %v", envs[0].Type, err)
		}
		if seq != s.d.seq {
			t.Fatalf("effects at seq %d, want %d", seq, s.d.seq)
		}
		before := s.d.oracleAt(s.d.seq)
		w := s.d.oracleAt(s.d.seq)
		for _, e := range envs {
			if err := w.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range principals {
			b, a := oracleAccessOf(before, "acme", p), oracleAccessOf(w, "acme", p)
			var mine []aggregates.Change
			for _, e := range effs {
				if e.Principal == p {
					mine = append(mine, aggregates.Change{Effect: e})
				}
			}
			if got := b.fold(mine); got.String() != a.String() {
				t.Fatalf("%s (%s) on %s: before %s\neffects give %s\nafter       %s\neffects %+v",
					envs[0].Type, envs[0].Aggregate.ID, p, b, got, a, mine)
			}
			if (b.String() != a.String()) != (len(mine) > 0) {
				t.Fatalf("%s on %s: access changed %v, effects %v", envs[0].Type, p, b.String() != a.String(), mine)
			}
			if len(mine) > 0 {
				tally.changed++
			}
		}
		tally.checked++
	}
	return tally
}

// TestChangeFeedGapWhenBehind: a feed that publishes slowly falls behind a burst of commands;
// the projector does not wait for it (it applies everything), and every change of access the
// feed does not announce lies in a gap it publishes on acl.changes.<tenant>.gap.
func TestChangeFeedGapWhenBehind(t *testing.T) {
	var mu sync.Mutex
	announced := map[string]bool{} // "<seq>/<principal>"
	var gaps []projections.Gap
	var feed *projections.Feed
	s := startStackWith(t, Options{}, func(env *eventstest.Env, db *projections.DB, proj *projections.Projector) func() {
		ctx, cancel := context.WithCancel(context.Background())
		feed = projections.NewFeed(projections.NewEngine(db, proj, projections.EngineOptions{}), projections.FeedOptions{
			Publish: func(_ context.Context, tenant, tail, _ string, body []byte) error {
				time.Sleep(2 * time.Millisecond) // a slow publisher
				mu.Lock()
				defer mu.Unlock()
				if tail == "gap" {
					var g projections.Gap
					json.Unmarshal(body, &g)
					gaps = append(gaps, g)
					return nil
				}
				var c aggregates.Change
				json.Unmarshal(body, &c)
				announced[fmt.Sprintf("%d/%s", c.Seq, c.Principal)] = true
				return nil
			}})
		proj.SetFeed(feed)
		done := make(chan error, 1)
		go func() { done <- feed.Run(ctx) }()
		return func() { cancel(); <-done; feed.Close() }
	})
	waitProjectorRunning(t, s.proj)
	newRandomHistory(s.d, 3)
	warmUp(s.d)
	for i := range 300 {
		s.d.must("acme", "admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: fmt.Sprintf("c%03d", i)}})
	}
	s.sync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := feed.WaitFor(ctx, s.d.seq); err != nil {
		t.Fatalf("feed published up to %d, want %d", feed.Published(), s.d.seq)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gaps) == 0 {
		t.Fatal("the slow feed announced no gap")
	}
	inGap := func(seq uint64) bool {
		return slices.ContainsFunc(gaps, func(g projections.Gap) bool { return g.Tenant == "acme" && g.From <= seq && seq <= g.To })
	}
	missed := 0
	prev := s.d.oracleAt(0)
	for seq := uint64(1); seq <= s.d.seq; seq++ {
		next := s.d.oracleAt(seq)
		for _, p := range append([]string{"admin"}, rhPrincipals...) {
			if oracleAccessOf(prev, "acme", p).String() == oracleAccessOf(next, "acme", p).String() {
				continue
			}
			if !announced[fmt.Sprintf("%d/%s", seq, p)] {
				if !inGap(seq) {
					t.Fatalf("seq %d changed %s's access: neither announced nor in a gap %v", seq, p, gaps)
				}
				missed++
			}
		}
		prev = next
	}
	t.Logf("%d gaps, %d changes announced, %d in gaps", len(gaps), len(announced), missed)
}

// TestChangeFeedDerivesWhatIsListenedTo: the feed derives the changes some subscription would
// receive, asked when it derives each message. Nobody subscribed: no change derived, the
// events counted as unheard. A caller subscribes to one principal's changes mid-stream: from
// then on every change of that principal's access is derived and delivered, as the oracle
// says (folded, they give its access after each position), and no other principal's change
// is derived though others' access changes. It unsubscribes: nothing more is derived.
func TestChangeFeedDerivesWhatIsListenedTo(t *testing.T) {
	fs := startFeedStackOn(t, "")
	h := newRandomHistory(fs.d, 11)
	warmUp(fs.d)
	h.run(200)
	fs.published(t)
	unheard, _ := fs.feed.Unheard()
	if n := fs.feed.Changes(); n != 0 || unheard == 0 {
		t.Fatalf("nobody listening: %d changes published, %d events unheard; want none published", n, unheard)
	}
	if a := fs.feed.Announced(); a != 0 {
		t.Fatalf("nobody listening: %d messages counted as announced, want 0", a)
	}

	bob := rhPrincipals[1]
	sub := fs.subscribe(t, events.ChangesSubject("acme", bob))
	from := fs.d.seq
	if ok := h.run(400); ok < 100 {
		t.Fatalf("only %d of 400 random commands were accepted", ok)
	}
	got := fs.changes(t)
	if n := fs.feed.Changes(); n != uint64(len(got)) {
		t.Fatalf("%d changes published, %d delivered to %s's subscriber: others' changes were derived", n, len(got), bob)
	}
	bySeq := map[uint64][]aggregates.Change{}
	for _, c := range got {
		if c.Principal != bob || c.Seq <= from {
			t.Fatalf("change of %s at seq %d delivered (subscribed to %s after seq %d)", c.Principal, c.Seq, bob, from)
		}
		bySeq[c.Seq] = append(bySeq[c.Seq], c)
	}
	others := 0
	prev := fs.d.oracleAt(from)
	for seq := from + 1; seq <= fs.d.seq; seq++ {
		next := fs.d.oracleAt(seq)
		before, after := oracleAccessOf(prev, "acme", bob), oracleAccessOf(next, "acme", bob)
		if folded := before.fold(bySeq[seq]); folded.String() != after.String() {
			t.Fatalf("seq %d, %s: before %s\nfolded %s\nafter  %s", seq, bob, before, folded, after)
		}
		for _, p := range append([]string{"admin"}, rhPrincipals...) {
			if p != bob && oracleAccessOf(prev, "acme", p).String() != oracleAccessOf(next, "acme", p).String() {
				others++
			}
		}
		prev = next
	}
	if len(got) < 5 || others < 20 {
		t.Fatalf("%d changes of %s, %d of the others: the history proves little", len(got), bob, others)
	}
	t.Logf("%d changes of %s derived and delivered; %d changes of the others' access not derived", len(got), bob, others)

	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	fs.nc.Flush()
	n := fs.feed.Changes()
	unheard, _ = fs.feed.Unheard()
	h.run(200)
	fs.published(t)
	if m, u := fs.feed.Changes(), func() uint64 { u, _ := fs.feed.Unheard(); return u }(); m != n || u <= unheard {
		t.Fatalf("after the unsubscription: %d changes published (%d before), %d events unheard (%d before)", m, n, u, unheard)
	}
}
