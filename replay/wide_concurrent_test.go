package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// liveAnswer is one answer of the live engine, taken while commands were applied, with what
// it was asked: each is compared afterwards with the oracle at the sequence it reports.
type liveAnswer struct {
	tenant string
	seq    uint64
	kind   string // check, visible, principals, permissions
	p      string
	perm   string
	rec    *events.RecordRef
	typ    string
	limit  int
	cursor string
	got    any
	err    error
	asOf   uint64 // the moment asked, 0 for the live model
}

// TestLiveAnswersMatchTheirSeq: queries of the live engine run while commands of the wide random
// histories are applied, cached states decoded by one query and reused by the next (the
// modification log, the shared snapshot, the decoded cache) included; each answer equals the
// pure evaluator's over the events up to the sequence the answer reports.
func TestLiveAnswersMatchTheirSeq(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7, DenseCheckpoints: 2, RebaseTables: 4, CachedStates: 2, OpenCheckpoints: 2})
	engine := projections.NewEngine(s.db, s.proj, projections.EngineOptions{})
	tenants := newWideTenants(s.d, 5)
	s.sync(t)
	var (
		mu      sync.Mutex
		answers []liveAnswer
		wg      sync.WaitGroup
	)
	done := make(chan struct{})
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 17))
			for {
				select {
				case <-done:
					return
				default:
				}
				e, release := engine, func() {}
				asOf := uint64(0)
				wt := tenants[rnd.IntN(len(tenants))]
				if g == 2 {
					// as_of at a random moment the live model has applied, while the chain
					// takes, thins and rebases its checkpoints and the shared base moves.
					asOf = 1 + rnd.Uint64N(s.proj.Applied())
					var err error
					if e, release, err = s.svc.AsOf(context.Background(), wt.id, Moment{Seq: asOf}); err != nil {
						if aggregates.ErrorCode(err) != aggregates.CodeNotFound { // a tenant created later
							t.Errorf("as_of %d %s: %v", asOf, wt.id, err)
						}
						continue
					}
				}
				var batch []liveAnswer
				for range 1 + 4*min(asOf, 1) {
					a := askLive(e, rnd, wt)
					a.asOf = asOf
					batch = append(batch, a)
				}
				release()
				mu.Lock()
				answers = append(answers, batch...)
				mu.Unlock()
			}
		}()
	}
	rnd := rand.New(rand.NewPCG(5, 18))
	ok := wideRun(s.d, rnd, tenants, 400)
	close(done)
	wg.Wait()
	t.Logf("%d commands accepted, %d answers taken while they were applied", ok, len(answers))
	sort.SliceStable(answers, func(i, j int) bool { return answers[i].seq < answers[j].seq })
	w := aggregates.World{}
	next := 0 // the next message to fold into w
	checked := 0
	for _, a := range answers {
		if a.err != nil && aggregates.ErrorCode(a.err) == "" {
			t.Fatalf("%s %s %s: %v", a.kind, a.tenant, a.p, a.err)
		}
		if a.seq == 0 {
			continue // an error answer carries no sequence
		}
		if a.asOf != 0 && a.seq != a.asOf {
			t.Fatalf("%s as_of %d answered seq %d", a.kind, a.asOf, a.seq)
		}
		for next < int(a.seq) {
			for _, e := range s.d.msgs[next].Events {
				if err := w.Apply(e); err != nil {
					t.Fatal(err)
				}
			}
			next++
		}
		if d := compareLive(w[a.tenant], a); d != "" {
			t.Fatalf("answer at seq %d (as_of %d): %s", a.seq, a.asOf, d)
		}
		checked++
	}
	asOfs := 0
	for _, a := range answers {
		if a.asOf != 0 && a.seq != 0 {
			asOfs++
		}
	}
	t.Logf("%d answers compared, %d of them as_of", checked, asOfs)
	if checked < 200 || asOfs < 50 {
		t.Fatalf("only %d answers compared, %d of them as_of", checked, asOfs)
	}
}

// askLive asks e one random question about tenant wt.
func askLive(e *projections.Engine, rnd *rand.Rand, wt *wideTenant) liveAnswer {
	ctx := context.Background()
	recs := wideRecords(wt)
	a := liveAnswer{tenant: wt.id, p: pickOf(rnd, append([]string{"admin"}, widePrincipals...))}
	r := pickOf(rnd, recs)
	switch rnd.IntN(4) {
	case 0:
		a.kind, a.perm = "check", pickOf(rnd, []string{r.Type + ".view", r.Type + ".edit", "client.view"})
		if rnd.IntN(5) > 0 {
			a.rec = &r
		}
		ans, err := e.Check(ctx, wt.id, projections.CheckQuery{Principal: a.p, Permission: a.perm, Record: a.rec})
		a.got, a.err, a.seq = ans, err, ans.Seq
	case 1:
		a.kind, a.typ, a.limit = "visible", pickOf(rnd, wideTypesOf(wt)), 1+rnd.IntN(4)
		if rnd.IntN(2) == 0 {
			a.cursor = pickOf(rnd, wideIDs)
		}
		ans, err := e.Visible(ctx, wt.id, projections.VisibleQuery{Principal: a.p, Type: a.typ, Limit: a.limit, Cursor: a.cursor})
		a.got, a.err, a.seq = ans, err, ans.Seq
	case 2:
		a.kind, a.rec, a.perm = "principals", &r, r.Type+".view"
		ans, err := e.Principals(ctx, wt.id, projections.PrincipalsQuery{Record: r, Permission: a.perm})
		a.got, a.err, a.seq = ans, err, ans.Seq
	default:
		a.kind = "permissions"
		ans, err := e.Permissions(ctx, wt.id, projections.PermissionsQuery{Principal: a.p})
		a.got, a.err, a.seq = ans, err, ans.Seq
	}
	return a
}

// compareLive compares one answer with the oracle m at its sequence; "" when they agree.
func compareLive(m *aggregates.Memory, a liveAnswer) string {
	if m == nil {
		return fmt.Sprintf("%s of tenant %s, which does not exist yet", a.kind, a.tenant)
	}
	switch a.kind {
	case "check":
		want, werr := aggregates.Check(m, a.p, a.perm, a.rec)
		if d := sameErr(a.err, werr); d != "" || werr != nil {
			return d
		}
		got := a.got.(aggregates.CheckAnswer)
		g := aggregates.Decision{Allowed: got.Allowed, Reason: got.Reason, Grants: got.Grants, Events: got.Events}
		want.Grants, want.Events = nonNilG(want.Grants), nonNilS(want.Events)
		if !reflect.DeepEqual(g, want) {
			return fmt.Sprintf("check %s %s %s %v:\n got %+v\nwant %+v", a.tenant, a.p, a.perm, a.rec, g, want)
		}
	case "visible":
		all, werr := aggregates.Visible(m, a.p, a.typ, "view")
		if d := sameErr(a.err, werr); d != "" || werr != nil {
			return d
		}
		var want []string
		for _, id := range all {
			if id > a.cursor {
				want = append(want, id)
			}
		}
		next := ""
		if len(want) > a.limit {
			want, next = want[:a.limit], want[a.limit-1]
		}
		got := a.got.(aggregates.VisibleAnswer)
		if !slices.Equal(got.IDs, nonNilS(want)) || got.NextCursor != next {
			return fmt.Sprintf("visible %s %s %s after %q limit %d: got %v next %q, want %v next %q", a.tenant, a.p, a.typ,
				a.cursor, a.limit, got.IDs, got.NextCursor, want, next)
		}
	case "principals":
		want, werr := aggregates.AllowedPrincipals(m, a.perm, *a.rec)
		if d := sameErr(a.err, werr); d != "" || werr != nil {
			return d
		}
		if got := a.got.(aggregates.PrincipalsAnswer); !slices.Equal(got.Principals, want) {
			return fmt.Sprintf("principals %s %v %s: got %v, want %v", a.tenant, a.rec, a.perm, got.Principals, want)
		}
	case "permissions":
		pr := m.Principal(a.p)
		var werr error
		if pr == nil || !pr.Exists {
			werr = aggregates.Errorf(aggregates.CodeNotFound, "no principal")
		}
		if d := sameErr(a.err, werr); d != "" || werr != nil {
			return d
		}
		got := a.got.(aggregates.PermissionsAnswer)
		want := aggregates.NarrowedGrants(m.T, pr, "")
		if !reflect.DeepEqual(got.Grants, want) || got.Level != pr.Level || got.Kind != pr.Kind ||
			!slices.Equal(got.Roles, nonNilS(pr.Roles)) || !slices.Equal(got.Denied, nonNilS(pr.Denied)) {
			return fmt.Sprintf("permissions %s %s:\n got %+v\nwant grants %+v level %s roles %v denied %v", a.tenant, a.p,
				got, want, pr.Level, pr.Roles, pr.Denied)
		}
	}
	return ""
}

func nonNilG(gs []aggregates.GrantUse) []aggregates.GrantUse {
	if gs == nil {
		return []aggregates.GrantUse{}
	}
	return gs
}
