package commands

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// The oracle test: random commands from several workers (seeded: the commands are the seed's,
// their interleaving the machine's), alone and in batches (pipelined or not, a command now and
// then twice in one batch), sent to several instances of the service on one stream, with small
// caches (evictions, the spill, command ids moved to it, a tenant's index bounded at 8, tenant
// snapshots every 10 events), instances restarted on their spill, commands resent with the same
// command id and body, or with the same id and another body. The service's answers and the
// stream's contents are then checked against what the SPEC requires of every history:
//   - a resent command is answered as the first time (seq and events), another body conflict;
//   - every acknowledged command's events are in the stream, once, under its command id;
//   - a refused command wrote nothing;
//   - the seat limits and exclusive roles hold in the stream's states;
//   - each instance's cache, once the stream is quiet, decides on the stream's states.
//
// It found the defects TestBatchRepeatInGroupAnswersAsAlone, TestRetryReadsTheAggregateThatForgot
// and TestNoChangeCheckedAgainstTheStream reproduce. More histories: -oracle.seeds, -oracle.steps.

// oracleCmd is one command sent: its name and body (with command_id and actor), and its first
// answer.
type oracleCmd struct {
	name string
	body []byte
	id   string
	res  Result
	code aggregates.Code // "" when accepted
	// how it was first sent: alone, batch or pipe, to which instance.
	how string
	// other is a body of the same command id on the same aggregate with another content: a
	// resend of it must be conflict (nil: none).
	other []byte
}

type oracle struct {
	t    *testing.T
	e    *testEnv
	svcs []*Service
	opts []Options
	// noEcho: the instances' connections are made with nats.NoEcho, as acld's.
	noEcho bool
	// live: workers hold it to use an instance, a restart takes it whole.
	live  sync.RWMutex
	mu    sync.Mutex
	sent  []*oracleCmd
	byID  map[string]*oracleCmd
	fails []string
}

const (
	oraclePrincipals = 10
	oracleRecords    = 24
	oracleFullSeats  = 4 // admin holds one
	oracleLimited    = 5
)

func (o *oracle) failf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails = append(o.fails, fmt.Sprintf(format, args...))
}

// newCommand makes a random command with a new id; other is set for commands whose id sent
// with another body must be conflict.
func (o *oracle) newCommand(rng *rand.Rand) *oracleCmd {
	id := newID(o.t)
	p := fmt.Sprintf("p%02d", rng.IntN(oraclePrincipals))
	n := fmt.Sprintf("n%02d", rng.IntN(20)) // registered and removed during the run
	if rng.IntN(4) == 0 {
		p = n
	}
	q := fmt.Sprintf("p%02d", rng.IntN(oraclePrincipals))
	rec := fmt.Sprintf("r%02d", rng.IntN(oracleRecords))
	if rng.IntN(3) == 0 {
		rec = "hot" // written often: its state moves command ids to the spill
	}
	base := aggregates.CommandBase{CommandID: id, Actor: "admin"}
	var cmd, other aggregates.Command
	switch k := rng.IntN(100); {
	case k < 22:
		levels := []string{aggregates.LevelFull, aggregates.LevelLimited, aggregates.LevelDisabled, aggregates.LevelFull}
		cmd = &aggregates.SetAccessLevel{CommandBase: base, Principal: p, Level: levels[rng.IntN(len(levels))]}
	case k < 36:
		roles := []string{"team_work_manager", "area_work_manager", "accountant", "work_manager"}
		cmd = &aggregates.AssignRole{CommandBase: base, Principal: p, Role: roles[rng.IntN(len(roles))]}
	case k < 44:
		roles := []string{"team_work_manager", "area_work_manager", "accountant", "work_manager"}
		cmd = &aggregates.RevokeRole{CommandBase: base, Principal: p, Role: roles[rng.IntN(len(roles))]}
	case k < 48:
		email := p + "@acme.test"
		if rng.IntN(3) == 0 {
			email = ""
		}
		cmd = &aggregates.SetEmail{CommandBase: base, Principal: p, Email: &email}
	case k < 50:
		cmd = &aggregates.RemovePrincipal{CommandBase: base, Principal: n}
	case k < 56:
		cmd = &aggregates.RegisterPrincipal{CommandBase: base, Principal: n, Kind: aggregates.KindStaff,
			Email: "n@acme.test"}
	case k < 64:
		cmd = &aggregates.RegisterRecord{CommandBase: base, RecordBody: events.RecordBody{Type: "repair_order", ID: rec,
			Units: []events.UnitRef{team("t1")}}}
	case k < 82:
		cmd = &aggregates.AssignRecord{CommandBase: base, Type: "repair_order", ID: rec, Principal: p}
		other = &aggregates.AssignRecord{CommandBase: base, Type: "repair_order", ID: rec, Principal: p + "x"}
	case k < 97:
		cmd = &aggregates.UnassignRecord{CommandBase: base, Type: "repair_order", ID: rec, Principal: p}
		other = &aggregates.UnassignRecord{CommandBase: base, Type: "repair_order", ID: rec, Principal: q + "y"}
	default:
		cmd = &aggregates.RemoveRecord{CommandBase: base, Type: "repair_order", ID: fmt.Sprintf("r%02d", rng.IntN(oracleRecords))}
	}
	c := &oracleCmd{name: cmd.Name(), id: id, body: mustJSON(o.t, cmd)}
	if other != nil {
		c.other = mustJSON(o.t, other)
	}
	return c
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// execute sends one command alone to s and returns its answer.
func (o *oracle) execute(ctx context.Context, s *Service, name string, body []byte) (Result, aggregates.Code) {
	cmd, err := decodeBody("acme", name, body)
	if err == nil {
		var res Result
		if res, err = s.Execute(ctx, cmd); err == nil {
			return res, ""
		}
	}
	return Result{}, aggregates.ErrorCode(err)
}

// batch sends commands as one batch request to s (pipe "" for none).
func (o *oracle) batch(ctx context.Context, s *Service, cmds []*oracleCmd, bodies [][]byte, pipe string, seq uint64) ([]Result, []aggregates.Code, bool) {
	req := BatchRequest{Pipe: pipe, Seq: seq}
	for i, c := range cmds {
		req.Commands = append(req.Commands, BatchCommand{Command: c.name, Body: bodies[i]})
	}
	ans := s.batchAnswer(ctx, &nats.Msg{Data: mustJSON(o.t, req)}, "acme")
	if !ans.OK {
		return nil, nil, false
	}
	res := make([]Result, len(ans.Results))
	codes := make([]aggregates.Code, len(ans.Results))
	for i, raw := range ans.Results {
		var a struct {
			OK     bool      `json:"ok"`
			Seq    uint64    `json:"seq"`
			Events []string  `json:"events"`
			Error  WireError `json:"error"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			o.t.Error(err)
			return nil, nil, false
		}
		if a.OK {
			res[i] = Result{Seq: a.Seq, Events: a.Events}
		} else {
			codes[i] = aggregates.Code(a.Error.Code)
		}
	}
	return res, codes, true
}

// record keeps a new command's first answer.
func (o *oracle) record(c *oracleCmd, res Result, code aggregates.Code) {
	c.res, c.code = res, code
	o.mu.Lock()
	o.sent = append(o.sent, c)
	o.byID[c.id] = c
	o.mu.Unlock()
}

// resendable picks an acknowledged command that wrote events (a command that changed nothing
// is not remembered, SPEC section 5), or nil.
func (o *oracle) resendable(rng *rand.Rand) *oracleCmd {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range 8 {
		if len(o.sent) == 0 {
			return nil
		}
		c := o.sent[rng.IntN(len(o.sent))]
		if c.code == "" && len(c.res.Events) > 0 {
			return c
		}
	}
	return nil
}

// compareResend checks a resent command's answer against its first one.
func (o *oracle) compareResend(c *oracleCmd, other bool, res Result, code aggregates.Code, how string) {
	switch {
	case other && code != aggregates.CodeConflict:
		o.failf("%s: %s %s (%s) resent with another body answered %q %+v, want conflict (first %+v)", how, c.name, c.id, c.how, code, res, c.res)
	case !other && (code != "" || res.Seq != c.res.Seq || !slices.Equal(res.Events, c.res.Events)):
		o.failf("%s: %s %s (%s) resent answered %q %+v, first %+v", how, c.name, c.id, c.how, code, res, c.res)
	}
}

// step does one random thing.
func (o *oracle) step(ctx context.Context, rng *rand.Rand) {
	if rng.IntN(300) == 0 {
		o.restart(rng.IntN(len(o.svcs)))
		return
	}
	o.live.RLock()
	defer o.live.RUnlock()
	s := o.svcs[rng.IntN(len(o.svcs))]
	switch k := rng.IntN(100); {
	case k < 14:
		c := o.resendable(rng)
		if c == nil {
			return
		}
		body, other := c.body, false
		if c.other != nil && rng.IntN(4) == 0 {
			body, other = c.other, true
		}
		res, code := o.execute(ctx, s, c.name, body)
		if code != aggregates.CodeUnavailable {
			o.compareResend(c, other, res, code, "alone")
		}
	case k < 24:
		// A batch of new commands, with a resent one now and then.
		n := 2 + rng.IntN(10)
		var cmds []*oracleCmd
		var bodies [][]byte
		var resent []bool
		for range n {
			if rng.IntN(6) == 0 {
				if c := o.resendable(rng); c != nil {
					cmds, bodies, resent = append(cmds, c), append(bodies, c.body), append(resent, true)
					continue
				}
			}
			if len(cmds) > 0 && rng.IntN(8) == 0 {
				// One of this batch's commands again: answered as a retry sent alone.
				j := rng.IntN(len(cmds))
				cmds, bodies, resent = append(cmds, cmds[j]), append(bodies, bodies[j]), append(resent, true)
				continue
			}
			c := o.newCommand(rng)
			cmds, bodies, resent = append(cmds, c), append(bodies, c.body), append(resent, false)
		}
		res, codes, ok := o.batch(ctx, s, cmds, bodies, "", 0)
		if !ok {
			return
		}
		for k, c := range cmds {
			if c.how == "" {
				c.how = fmt.Sprintf("batch item %d of %d on %p", k, len(cmds), s)
			}
		}
		o.takeBatch(cmds, resent, res, codes)
	case k < 27:
		// Two batches of one pipe, sent together.
		name := newID(o.t)
		var wg sync.WaitGroup
		for seq := uint64(1); seq <= 2; seq++ {
			var cmds []*oracleCmd
			var bodies [][]byte
			for range 2 + rng.IntN(8) {
				c := o.newCommand(rng)
				cmds, bodies = append(cmds, c), append(bodies, c.body)
			}
			wg.Go(func() {
				res, codes, ok := o.batch(ctx, s, cmds, bodies, name, seq)
				for k, c := range cmds {
					c.how = fmt.Sprintf("pipe %d item %d of %d on %p", seq, k, len(cmds), s)
				}
				if ok {
					o.takeBatch(cmds, make([]bool, len(cmds)), res, codes)
				}
			})
		}
		wg.Wait()
	case k < 28:
		s.DropCache()
	default:
		c := o.newCommand(rng)
		res, code := o.execute(ctx, s, c.name, c.body)
		c.how = fmt.Sprintf("alone on %p", s)
		o.record(c, res, code)
	}
}

// start starts an instance as startService does, on a connection without echo when o.noEcho
// (as acld's: its own appends do not come back to its invalidations).
func (o *oracle) start(opts Options) *Service {
	if !o.noEcho {
		return startService(o.t, o.e, opts)
	}
	t := o.t
	nc := o.e.Connect(t, o.e.Owner.Option(), nats.NoEcho())
	store, err := events.OpenStore(o.e.ctx, nc, events.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Follow = events.NewFanout(store)
	s := NewService(nc, store, opts)
	if err := s.Start(o.e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if s.cache.spill != nil {
		eventstest.WaitFor(t, 30*time.Second, func() error {
			if !s.cache.spill.trusted.Load() {
				return fmt.Errorf("the follower has not reached the stream's end")
			}
			return nil
		})
	}
	return s
}

// restart closes instance i and starts it again with its options (its spill directory kept).
func (o *oracle) restart(i int) {
	o.live.Lock()
	defer o.live.Unlock()
	o.svcs[i].Close()
	o.svcs[i] = o.start(o.opts[i])
}

// takeBatch records a batch's answers: the commands after the last answered one were not
// carried out.
func (o *oracle) takeBatch(cmds []*oracleCmd, resent []bool, res []Result, codes []aggregates.Code) {
	for i := range res {
		if !resent[i] {
			o.record(cmds[i], res[i], codes[i])
		}
	}
	for i := range res {
		c := cmds[i]
		switch {
		case !resent[i] || codes[i] == aggregates.CodeUnavailable:
		case c.code == "" && len(c.res.Events) > 0:
			// A resent command that wrote events the first time (earlier in this batch too).
			o.compareResend(c, false, res[i], codes[i], "in a batch")
		case codes[i] == "":
			// It changed nothing or was refused the first time (refused when its batch's
			// atomic batch was refused and it was carried out alone, which does not stop the
			// batch), so it was not remembered: decided again, it may have written (another
			// writer changed the aggregate meanwhile).
			o.mu.Lock()
			c.res, c.code = res[i], ""
			o.mu.Unlock()
		}
	}
}

// check compares the stream with the answers.
func (o *oracle) check(ctx context.Context) {
	t := o.t
	type stored struct {
		subject string
		seq     uint64
		events  []string
	}
	byCmd := map[string][]stored{}
	states := map[string]any{}
	refs := map[string]events.AggregateRef{}
	last, err := o.e.Store.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = o.e.Store.Read(ctx, 1, last, func(ms []events.Message) error {
		for _, m := range ms {
			if len(m.Events) == 0 {
				continue
			}
			ref := m.Events[0].Aggregate
			st := states[m.Subject]
			if st == nil {
				st = newState(ref)
				states[m.Subject], refs[m.Subject] = st, ref
			}
			s := stored{subject: m.Subject, seq: m.Seq}
			for _, env := range m.Events {
				if err := applyEnvelope(st, env); err != nil {
					return err
				}
				s.events = append(s.events, env.ID)
			}
			id := m.Events[0].CommandID
			byCmd[id] = append(byCmd[id], s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range o.sent {
		msgs := byCmd[c.id]
		subjects := map[string]int{}
		for _, m := range msgs {
			subjects[m.subject]++
		}
		for subj, n := range subjects {
			if n > 1 {
				o.failf("%s %s stored %d times on %s", c.name, c.id, n, subj)
			}
		}
		switch {
		case c.code == aggregates.CodeUnavailable:
		case c.code != "":
			if len(msgs) > 0 {
				o.failf("%s %s (%s) refused (%s) but stored at %+v", c.name, c.id, c.how, c.code, msgs)
			}
		case len(c.res.Events) == 0:
			if len(msgs) > 0 {
				o.failf("%s %s (%s) answered no events but stored %+v", c.name, c.id, c.how, msgs)
			}
		default:
			sort.Slice(msgs, func(i, j int) bool { return msgs[i].seq < msgs[j].seq })
			var evs []string
			var seq uint64
			for _, m := range msgs {
				evs = append(evs, m.events...)
				seq = max(seq, m.seq)
			}
			if seq != c.res.Seq || !slices.Equal(evs, c.res.Events) {
				o.failf("%s %s (%s) answered %+v, stored seq %d events %v", c.name, c.id, c.how, c.res, seq, evs)
			}
		}
	}
	// The invariants of the tenant's states.
	tenant := states[events.Prefix+".acme.tenant.acme"].(*aggregates.Tenant)
	if n := tenant.SeatsUsed(aggregates.LevelFull); n > oracleFullSeats {
		o.failf("%d full seats used, limit %d", n, oracleFullSeats)
	}
	if n := tenant.SeatsUsed(aggregates.LevelLimited); n > oracleLimited {
		o.failf("%d limited seats used, limit %d", n, oracleLimited)
	}
	for subj, st := range states {
		p, ok := st.(*aggregates.Principal)
		if !ok {
			continue
		}
		want := ""
		if p.Active() && p.Level != aggregates.LevelDisabled {
			want = p.Level
		}
		if got := tenant.SeatHolders[p.ID]; got != want {
			o.failf("%s: level %s (removed %v), the tenant's seat holders say %q", subj, p.Level, p.Removed, got)
		}
		for _, r := range p.Roles {
			if role := tenant.Roles[r]; role != nil && role.Def.Exclusive && len(p.Roles) > 1 {
				o.failf("%s holds %v: exclusive %s with others", subj, p.Roles, r)
			}
		}
	}
	// Each instance decides on the stream's states once it is quiet.
	for i, s := range o.svcs {
		eventstest.WaitFor(t, 30*time.Second, func() error {
			for subj, want := range states {
				en, err := s.cache.entry("acme", refs[subj])
				if err != nil {
					return err
				}
				snap, err := s.cache.fresh(ctx, en)
				if err != nil {
					return err
				}
				if got := stateSeq(snap.state); got != stateSeq(want) {
					return fmt.Errorf("instance %d: %s at %d, the stream's at %d", i, subj, got, stateSeq(want))
				}
				gj, wj := mustJSON(t, snap.state), mustJSON(t, want)
				if string(gj) != string(wj) {
					return fmt.Errorf("instance %d: %s is %s, the stream's %s", i, subj, gj, wj)
				}
			}
			return nil
		})
	}
}

// runOracle sets the tenant up, runs workers × steps random steps, checks.
func runOracle(t *testing.T, seed uint64, workers, steps int, noEcho bool, opts []Options) {
	defer func(k int) { keptTenantCommands = k }(keptTenantCommands)
	keptTenantCommands = 8
	e := startEnv(t, 0)
	o := &oracle{t: t, e: e, byID: map[string]*oracleCmd{}, noEcho: noEcho}
	for _, opt := range opts {
		if opt.StateDir != "" {
			opt.StateDir = t.TempDir()
		}
		o.opts = append(o.opts, opt)
		o.svcs = append(o.svcs, o.start(opt))
	}
	s0 := o.svcs[0]
	must := func(cmd aggregates.Command) {
		t.Helper()
		if _, err := execAdmin(t, e, s0, cmd); err != nil {
			t.Fatalf("%s: %v", cmd.Name(), err)
		}
	}
	must(&aggregates.CreateTenant{Preset: "reconpro", Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@acme.test"}})
	sub := &aggregates.SetSubscription{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: aggregates.SystemActor, CommandID: newID(t)},
		Features: &[]string{}, Seats: map[string]int{aggregates.LevelFull: oracleFullSeats, aggregates.LevelLimited: oracleLimited}}
	if _, err := s0.Execute(e.ctx, sub); err != nil {
		t.Fatal(err)
	}
	must(&aggregates.DefineUnit{Unit: team("t1")})
	for i := range oraclePrincipals {
		must(&aggregates.RegisterPrincipal{Principal: fmt.Sprintf("p%02d", i), Kind: aggregates.KindStaff, Email: "p@acme.test",
			Units: []events.UnitRef{team("t1")}})
	}
	must(&aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "hot", Units: []events.UnitRef{team("t1")}}})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range steps {
				o.step(e.ctx, rng)
			}
		})
	}
	wg.Wait()
	o.check(e.ctx)
	codes := map[string]int{}
	for _, c := range o.sent {
		k := string(c.code)
		if c.code == "" {
			k = "ok"
			if len(c.res.Events) == 0 {
				k = "unchanged"
			}
		}
		codes[c.name+":"+k]++
	}
	t.Logf("%d commands sent (%v), stream at %d", len(o.sent), codes, e.lastSeq())
	for _, f := range o.fails {
		t.Error(f)
	}
}

var (
	oracleSeeds = flag.Int("oracle.seeds", 1, "seeds of TestOracleRandomHistories")
	oracleSteps = flag.Int("oracle.steps", 100, "steps of each worker of TestOracleRandomHistories")
)

// TestOracleRandomHistories runs random histories on instances of several kinds.
func TestOracleRandomHistories(t *testing.T) {
	for _, c := range []struct {
		name   string
		noEcho bool
		opts   []Options
	}{
		{"spill", true, []Options{{CacheSize: 6, StateDir: "x", SnapshotAfter: 10}, {CacheSize: 6, StateDir: "x", SnapshotAfter: 10}}},
		{"mixed", false, []Options{{CacheSize: 6, StateDir: "x", SnapshotAfter: 10}, {CacheSize: 6, SnapshotAfter: 10}, {}}},
		{"memory", true, []Options{{}, {}}},
		{"memory echo", false, []Options{{CacheSize: 6}, {}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for seed := range uint64(*oracleSeeds) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { runOracle(t, seed, 6, *oracleSteps, c.noEcho, c.opts) })
			}
		})
	}
}
