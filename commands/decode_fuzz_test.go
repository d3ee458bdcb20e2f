package commands

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// FuzzDecodeCommand feeds arbitrary subjects and bodies through decoding, validation and the
// pure decision over a small ReconPro tenant: nothing panics, and every rejection carries a
// code other than internal. The seed corpus is in testdata/fuzz/FuzzDecodeCommand.
func FuzzDecodeCommand(f *testing.F) {
	f.Add("acl.commands.acme.AssignRole", []byte(`{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e10","actor":"admin","principal":"bob","role":"accountant"}`))
	m := fuzzFacts(f)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		cmd, err := DecodeCommand(subject, body)
		if err != nil {
			if code := aggregates.ErrorCode(err); code != aggregates.CodeInvalidArgument {
				t.Fatalf("decode rejected with %q, want invalid_argument: %v", code, err)
			}
			return
		}
		_ = Hash(cmd)
		if err := aggregates.Validate(cmd); err != nil && aggregates.ErrorCode(err) != aggregates.CodeInvalidArgument {
			t.Fatalf("validate rejected with %q: %v", aggregates.ErrorCode(err), err)
		}
		if _, err := aggregates.Decide(m, cmd, now); err != nil && aggregates.ErrorCode(err) == aggregates.CodeInternal {
			t.Fatalf("decide failed without a code: %v", err)
		}
	})
}

// fuzzFacts is tenant acme (reconpro) with its administrator, team t1 and bob (accountant).
func fuzzFacts(tb testing.TB) *aggregates.Memory {
	m := aggregates.NewMemory("acme")
	seq := uint64(0)
	run := func(actor string, cmd aggregates.Command) {
		b := cmd.Base()
		b.Tenant, b.Actor, b.CommandID = "acme", actor, "seed"
		ws, err := aggregates.Decide(m, cmd, time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		for _, w := range ws {
			seq++
			for _, d := range w.Events {
				env, err := events.New(events.Meta{Tenant: "acme", Aggregate: w.Aggregate, Actor: actor, CommandID: "seed", Time: time.Now()}, d)
				if err != nil {
					tb.Fatal(err)
				}
				env.Seq = seq
				if err := m.Apply(env); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	run(aggregates.SystemActor, &aggregates.CreateTenant{Preset: "reconpro",
		Admin: aggregates.RegisterPrincipal{Principal: "admin", Kind: aggregates.KindStaff, Email: "a@acme.test"}})
	run("admin", &aggregates.DefineUnit{Unit: team("t1")})
	run("admin", &aggregates.RegisterPrincipal{Principal: "bob", Kind: aggregates.KindStaff, Email: "b@acme.test", Units: []events.UnitRef{team("t1")}})
	run("admin", &aggregates.AssignRole{Principal: "bob", Role: "accountant"})
	return m
}

// FuzzTenantSnapshot: decoding any bytes as a tenant snapshot never panics, and what decodes
// encodes back to a snapshot that decodes to the same state.
func FuzzTenantSnapshot(f *testing.F) {
	subject := "acl.events.acme.tenant.acme"
	t := aggregates.NewTenant("acme")
	t.Exists, t.Seq = true, 7
	t.SeatHolders["bob"] = aggregates.LevelFull
	t.Commands["c1"] = aggregates.CommandResult{Seq: 7, Events: []string{"e1", "e2"}, Hash: "h"}
	t.Units["team:t1"] = "e0"
	good, err := encodeTenantSnapshot(subject, t)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Fuzz(func(tt *testing.T, data []byte) {
		st, err := decodeTenantSnapshot(bytes.Clone(data), subject, "acme", 7) // it keeps its input
		if err != nil {
			return
		}
		again, err := encodeTenantSnapshot(subject, st)
		if err != nil {
			tt.Fatal(err)
		}
		st2, err := decodeTenantSnapshot(again, subject, "acme", 7)
		if err != nil || !reflect.DeepEqual(st, st2) {
			tt.Fatalf("re-encoded snapshot decodes to %+v (%v), want %+v", st2, err, st)
		}
	})
}

// FuzzSpillState: decoding any bytes as a spilled state never panics, and what decodes encodes
// back (version 3) to a state that decodes the same.
func FuzzSpillState(f *testing.F) {
	p := aggregates.NewPrincipal("p1")
	p.Exists, p.Seq = true, 9
	p.Prov["registered"] = "01a24b49-c43a-7b6c-8141-46979b659741"
	p.Prov["level"] = "01a24b49-c43a-7b6c-8141-46979b659741"
	p.Commands.Set("de68f23b-9146-5042-b121-7259a2b511e6", aggregates.CommandResult{Seq: 9,
		Hash: "baea4f32dcc7f523b806fb1a7f96fa487491a7ddf516968d49679d710248e0c8", Events: []string{"01a24b49-c43a-7b6c-8141-46979b659741", "x"}})
	r := aggregates.NewRecord("case", "c1")
	r.Commands.Set("c", aggregates.CommandResult{Seq: 1, Hash: "h", Events: []string{"e"}})
	for _, st := range []any{p, r} {
		good, err := encodeState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(good)
		f.Add(good[:len(good)-3])
	}
	f.Fuzz(func(tt *testing.T, data []byte) {
		st, err := decodeState(bytes.Clone(data)) // it keeps its input
		if err != nil {
			return
		}
		again, err := encodeState(st)
		if err != nil {
			tt.Fatal(err)
		}
		st2, err := decodeState(again)
		if err != nil || !sameState(st, st2) {
			tt.Fatalf("re-encoded state decodes to %+v (%v), want %+v", st2, err, st)
		}
	})
}
