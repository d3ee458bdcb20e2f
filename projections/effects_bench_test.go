package projections

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// A Probuild tenant of effectsHolders workers (staff, full, role worker), each owning one
// timesheet, for the cost of a dry run of a change to the worker role (SPEC section 8: a role
// change reaches every holder).
// BENCH_EFFECTS_HOLDERS sets another number (profiles).
var effectsHolders = envInt("BENCH_EFFECTS_HOLDERS", 10_000)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var effectsBench struct {
	once sync.Once
	eng  *Engine
	seq  uint64
}

func effectsEngine(b *testing.B) *Engine {
	effectsBench.once.Do(func() {
		g := newGenerator(1)
		t := &genTenant{id: "pro", kinds: map[string]string{}, records: map[string][]string{}}
		preset, err := aggregates.Preset("probuild")
		if err != nil {
			b.Fatal(err)
		}
		g.emit(t, events.TenantRef("pro"), preset)
		for i := range effectsHolders {
			id := fmt.Sprintf("w%05d", i)
			g.emit(t, events.PrincipalRef(id), events.PrincipalRegisteredV1{Principal: id, Kind: aggregates.KindStaff, Email: id + "@pro.test"})
			g.emit(t, events.PrincipalRef(id), events.AccessLevelSetV1{Level: aggregates.LevelFull, From: aggregates.LevelDisabled},
				events.RoleAssignedV1{Role: "worker"})
			ts := "ts-" + id
			g.emit(t, events.RecordAggregate("timesheet", ts), events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "timesheet", ID: ts, Owner: id}})
		}
		msgs := messages(g.items)
		effectsBench.eng = engineOver(b, "projections-effects-bench", msgs, false)
		effectsBench.seq = msgs[len(msgs)-1].Seq
	})
	if effectsBench.eng == nil {
		b.Fatal("data set not built")
	}
	return effectsBench.eng
}

// engineOver applies msgs to a fresh DB in a temporary directory (removed when b ends) and
// returns an engine over it; compact compacts it first, as a settled deployment's.
func engineOver(b *testing.B, name string, msgs []events.Message, compact bool) *Engine {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	db, err := OpenDB(dir, DBOptions{CacheBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewProjector(db, nil)
	if err != nil {
		b.Fatal(err)
	}
	applyAll(b, p, msgs, 4096)
	if compact {
		if err := db.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	return NewEngine(db, p, EngineOptions{})
}

// BenchmarkDryRunRoleChange: Engine.Effects (what a dry run answers) of revoking one grant of
// the worker role, held by 10^4 workers: a permission that is not a view (grants only), and
// timesheet.view at scope own (each worker's visible timesheets are compared too: it loses
// its own).
//
//	go test ./projections/ -run '^$' -bench DryRunRoleChange -benchtime 5x
func BenchmarkDryRunRoleChange(b *testing.B) {
	eng := effectsEngine(b) // here: its clean-up runs after the sub-benchmarks
	for _, g := range []events.Grant{{Permission: "timesheet.edit", Scope: aggregates.ScopeOwn}, {Permission: "timesheet.view", Scope: aggregates.ScopeOwn}} {
		b.Run(g.Permission+"@"+g.Scope, func(b *testing.B) {
			env, err := events.New(events.Meta{Tenant: "pro", Aggregate: events.TenantRef("pro"), Actor: "admin", CommandID: "c"},
				events.RolePermissionRevokedV1{Role: "worker", Grant: g})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				_, effs, err := eng.Effects(context.Background(), "pro", effectsBench.seq, []events.Envelope{env})
				if err != nil {
					b.Fatal(err)
				}
				if len(effs) != effectsHolders {
					b.Fatalf("%d effects, want %d", len(effs), effectsHolders)
				}
			}
		})
	}
}
