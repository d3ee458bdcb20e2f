package commands

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

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
