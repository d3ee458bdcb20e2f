package commands

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestBatchLoadOnlyWhenMarked: only a batch marked as part of a bulk load (BatchLoad, as aclctl
// import sends) starts one, which lets acld hold its read side's followers; a plain batch, a
// service's everyday writes, leaves them following every append.
func TestBatchLoadOnlyWhenMarked(t *testing.T) {
	bulk := &events.BulkLoad{MaxLag: 1000, Quiet: time.Hour}
	e := startEnvWith(t, 1, Options{Bulk: bulk})
	e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
	register := func(id string) []BatchCommand {
		cmd := &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: uuid.NewString()},
			Principal: id, Kind: aggregates.KindStaff, Email: id + "@acme.test"}
		body, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return []BatchCommand{{Command: cmd.Name(), Body: body}}
	}
	tests := []struct {
		name string
		send func([]BatchCommand) ([]BatchOutcome, error)
		load bool
	}{
		{"plain batch", func(b []BatchCommand) ([]BatchOutcome, error) { return e.c.Batch(e.ctx, "acme", b) }, false},
		{"batch of a load", func(b []BatchCommand) ([]BatchOutcome, error) { return e.c.BatchLoad(e.ctx, "acme", b) }, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.send(register("p" + string(rune('a'+i))))
			if err != nil || len(out) != 1 || out[0].Err != nil {
				t.Fatalf("batch: %v %+v", err, out)
			}
			if got := bulk.Running(); got != tc.load {
				t.Fatalf("bulk load running after a %s: %v, want %v", tc.name, got, tc.load)
			}
		})
	}
}

// TestBatchLoadOnlyForEveryTenant: a load holds the read side of every tenant, so only an
// identity that may address every tenant may mark a batch as one; another's batch of a load is
// refused whole, with nothing written and nothing held.
func TestBatchLoadOnlyForEveryTenant(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tenants []string
		refused bool
	}{
		{"every tenant", []string{aggregates.All}, false},
		{"one tenant", []string{"acme"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bulk := &events.BulkLoad{MaxLag: 1000, Quiet: time.Hour}
			caller := &aggregates.Caller{Name: "importer", Tenants: tc.tenants, Commands: []string{aggregates.All},
				Queries: []string{aggregates.All}, Actors: []string{aggregates.All}, System: true}
			e := startEnvWith(t, 1, Options{Bulk: bulk, Identify: func(nats.Header) (*aggregates.Caller, error) { return caller, nil }})
			e.must(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops",
				Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "admin@acme.test"}})
			cmd := &aggregates.RegisterPrincipal{CommandBase: aggregates.CommandBase{Actor: "admin", CommandID: uuid.NewString()},
				Principal: "p", Kind: aggregates.KindStaff, Email: "p@acme.test"}
			body, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			before := e.lastSeq()
			out, err := e.c.BatchLoad(e.ctx, "acme", []BatchCommand{{Command: cmd.Name(), Body: body}})
			if tc.refused {
				if aggregates.ErrorCode(err) != aggregates.CodeForbidden {
					t.Fatalf("batch of a load from %v: %v %+v, want forbidden", tc.tenants, err, out)
				}
				if got := e.lastSeq(); got != before {
					t.Fatalf("a refused batch wrote: the stream went from %d to %d", before, got)
				}
			} else if err != nil || len(out) != 1 || out[0].Err != nil {
				t.Fatalf("batch of a load from %v: %v %+v", tc.tenants, err, out)
			}
			if got := bulk.Running(); got == tc.refused {
				t.Fatalf("bulk load running: %v after a batch from %v", got, tc.tenants)
			}
		})
	}
}
