package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/commands"
	"github.com/acl-es/acl/events"
)

// TestOpenAPIRandomHistory: over a random history (aggregatestest.Random: principals of every
// kind and level, roles defined and revoked, records linked, assigned, removed, the policy
// changed), every query's answers on every principal and record of the history's pools, live
// and as_of an earlier moment, errors included, validate against the description. The demo
// tenant of TestOpenAPI shows one of each answer; this one shows the shapes a real tenant's
// history gives (empty lists, removed principals, narrowed grants, several pages).
func TestOpenAPIRandomHistory(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 100
	}
	m := startMain(t)
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := commands.NewClient(nc)
	ctx := context.Background()

	// The tenant's state as the generator needs it, read back from the stream.
	world, applied := aggregates.World{}, uint64(0)
	follow := func(seq uint64) {
		if seq <= applied {
			return
		}
		err := m.store.Read(ctx, applied+1, seq, func(msgs []events.Message) error {
			for _, msg := range msgs {
				for _, e := range msg.Events {
					if err := world.Apply(e); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		applied = seq
	}
	do := func(actor string, cmd aggregates.Command) error {
		cmd.Base().Actor = actor
		res, err := c.Do(ctx, "acme", cmd)
		if err == nil {
			follow(res.Seq)
		}
		return err
	}
	admin := aggregates.RegisterPrincipal{Principal: aggregatestest.Admin, Kind: aggregates.KindStaff, Email: "admin@acme.test"}
	if err := do(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "trackops", Admin: admin}); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range aggregatestest.Setup() {
		if err := do(aggregatestest.Admin, cmd); err != nil {
			t.Fatal(err)
		}
	}
	gen := aggregatestest.NewRandom(17)
	accepted, middle := 0, uint64(0)
	for i := range steps {
		if err := do(gen.Command(world["acme"].T)); err == nil {
			accepted++
		}
		if i == steps/2 {
			middle = applied
		}
	}
	last := applied
	caughtUp(t, m, last) // the answers at min_seq last are answers, not not_caught_up
	t.Logf("%d of %d random commands accepted, stream at %d", accepted, steps, last)

	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	v := newAPIValidator(t, doc, base)
	statuses := map[int]int{}
	ask := func(query string, body map[string]any) []byte {
		raw, _ := json.Marshal(body)
		status, answer := v.ask(t, "acme", query, string(raw), false)
		statuses[status]++
		return answer
	}
	principals := append([]string{aggregatestest.Admin, "nobody"}, aggregatestest.Principals...)
	var records []events.RecordRef
	for _, typ := range aggregatestest.Types {
		for _, id := range append(slices.Clone(aggregatestest.IDs), "r9") {
			records = append(records, events.RecordRef{Type: typ, ID: id})
		}
	}
	perms := slices.Clone(world["acme"].T.Policy.Permissions)
	for _, at := range []map[string]any{{"min_seq": last}, {"as_of": middle}} {
		with := func(body map[string]any) map[string]any {
			for k, x := range at {
				body[k] = x
			}
			return body
		}
		for _, p := range principals {
			ask("permissions", with(map[string]any{"principal": p}))
			for i, perm := range perms {
				if i%2 != 0 {
					continue // half of the permissions, each with a record of its type
				}
				ask("check", with(map[string]any{"principal": p, "permission": perm}))
				typ, _, _ := strings.Cut(perm, ".")
				ask("check", with(map[string]any{"principal": p, "permission": perm, "record": map[string]string{"type": typ, "id": "r1"}}))
			}
			for _, typ := range aggregatestest.Types {
				cursor := ""
				for range 10 { // every page, two ids a page
					var page struct {
						NextCursor string `json:"next_cursor"`
					}
					json.Unmarshal(ask("visible", with(map[string]any{"principal": p, "type": typ, "limit": 2, "cursor": cursor})), &page)
					if cursor = page.NextCursor; cursor == "" {
						break
					}
				}
			}
		}
		for _, r := range records {
			ask("principals", with(map[string]any{"record": r, "permission": r.Type + ".view"}))
			ask("recipients", with(map[string]any{"record": r}))
		}
	}
	for _, p := range principals {
		ask("history", map[string]any{"principal": p, "limit": 5, "min_seq": last})
		ask("history", map[string]any{"principal": p, "from": middle, "to": last, "as_of": last})
		ask("diff", map[string]any{"principal": p, "from": 1, "to": middle})
		ask("diff", map[string]any{"principal": p, "from": middle, "to": last, "min_seq": last})
	}
	for _, r := range records {
		ask("history", map[string]any{"record": r, "min_seq": last})
	}
	for _, body := range []map[string]any{{"min_seq": last}, {"as_of": middle, "limit": 2}, {"search": "p", "limit": 3}} {
		ask("tenant", body)
	}
	for _, body := range []map[string]any{{"min_seq": last}, {"as_of": middle, "limit": 3}, {"principals": principals, "types": aggregatestest.Types, "min_seq": last}} {
		ask("review", body)
	}
	t.Logf("%d requests and answers match the description; statuses %v", v.n, statuses)
	if statuses[200] == 0 || statuses[404] == 0 {
		t.Fatalf("statuses %v: the history should give answers and not_found both", statuses)
	}
}
