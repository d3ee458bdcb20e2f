package commands

import (
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// TestErrorCodesOverNATS sends bad commands as raw JSON requests and checks that each answers
// its code with a message, and that none of them wrote anything.
func TestErrorCodesOverNATS(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	e.must(aggregates.SystemActor, &aggregates.SetSubscription{Features: &[]string{}, Seats: map[string]int{aggregates.LevelFull: 4}})
	const acme = "acl.commands.acme."
	cases := []struct {
		name, subject, body string
		code                aggregates.Code
	}{
		{"wildcard tenant", "acl.commands.*.AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"accountant"}`, aggregates.CodeInvalidArgument},
		{"unknown command", acme + "Frobnicate", `{"command_id":"CID","actor":"admin"}`, aggregates.CodeInvalidArgument},
		{"extra subject token", acme + "x.AssignRole", `{"command_id":"CID","actor":"admin"}`, aggregates.CodeInvalidArgument},
		{"malformed JSON", acme + "AssignRole", `{"command_id":"CID",`, aggregates.CodeInvalidArgument},
		{"unknown field", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"accountant","scope":"all"}`, aggregates.CodeInvalidArgument},
		{"trailing data", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"accountant"} {}`, aggregates.CodeInvalidArgument},
		{"command id not a UUID", acme + "AssignRole", `{"command_id":"42","actor":"admin","principal":"bob","role":"accountant"}`, aggregates.CodeInvalidArgument},
		{"no actor", acme + "AssignRole", `{"command_id":"CID","principal":"bob","role":"accountant"}`, aggregates.CodeInvalidArgument},
		{"wrong type", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":7,"role":"accountant"}`, aggregates.CodeInvalidArgument},
		{"principal named system", acme + "RegisterPrincipal", `{"command_id":"CID","actor":"admin","principal":"system","kind":"staff"}`, aggregates.CodeInvalidArgument},
		{"unknown role", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"wizard"}`, aggregates.CodeUnknownRole},
		{"unknown permission", acme + "GrantPermission", `{"command_id":"CID","actor":"admin","principal":"bob","permission":"invoice.veiw","scope":"all"}`, aggregates.CodeUnknownPermission},
		{"unknown tenant", "acl.commands.nowhere.AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"accountant"}`, aggregates.CodeNotFound},
		{"unknown principal", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"ghost","role":"accountant"}`, aggregates.CodeNotFound},
		{"undefined unit", acme + "JoinUnit", `{"command_id":"CID","actor":"admin","principal":"bob","unit":{"kind":"team","id":"t9"}}`, aggregates.CodeNotFound},
		{"unknown record", acme + "RemoveRecord", `{"command_id":"CID","actor":"admin","type":"invoice","id":"nope"}`, aggregates.CodeNotFound},
		{"actor not a principal", acme + "AssignRole", `{"command_id":"CID","actor":"mallory","principal":"bob","role":"accountant"}`, aggregates.CodeForbidden},
		{"not system", acme + "SetSubscription", `{"command_id":"CID","actor":"admin","features":[],"seats":{}}`, aggregates.CodeForbidden},
		{"already exists", acme + "DefineUnit", `{"command_id":"CID","actor":"admin","unit":{"kind":"team","id":"t1"}}`, aggregates.CodeAlreadyExists},
		{"exclusive role", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"bob","role":"team_work_manager"}`, aggregates.CodeExclusiveRole},
		{"feature required", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"carl","role":"technician"}`, aggregates.CodeFeatureRequired},
		{"principal kind mismatch", acme + "AssignRole", `{"command_id":"CID","actor":"admin","principal":"carl","role":"client"}`, aggregates.CodePrincipalKindMismatch},
		{"email required", acme + "SetAccessLevel", `{"command_id":"CID","actor":"admin","principal":"dora","level":"limited"}`, aggregates.CodeEmailRequired},
		{"seat limit reached", acme + "SetAccessLevel", `{"command_id":"CID","actor":"admin","principal":"erin","level":"full"}`, aggregates.CodeSeatLimitReached},
		{"conflict", acme + "DeleteRole", `{"command_id":"CID","actor":"admin","role":"accountant"}`, aggregates.CodeConflict},
	}
	before := e.lastSeq()
	seen := map[aggregates.Code]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.raw(c.subject, c.body)
			if a.OK || a.Error == nil || a.Error.Code != c.code || a.Error.Message == "" {
				t.Fatalf("answer %+v (error %+v), want code %s with a message", a, a.Error, c.code)
			}
			seen[c.code] = true
		})
	}
	if after := e.lastSeq(); after != before {
		t.Fatalf("rejected commands moved the stream from %d to %d", before, after)
	}
	// Every code of SPEC section 5 but unavailable (TestUnavailable) was produced.
	for _, code := range []aggregates.Code{aggregates.CodeInvalidArgument, aggregates.CodeNotFound, aggregates.CodeAlreadyExists,
		aggregates.CodeConflict, aggregates.CodeForbidden, aggregates.CodeExclusiveRole, aggregates.CodeFeatureRequired,
		aggregates.CodeSeatLimitReached, aggregates.CodeEmailRequired, aggregates.CodePrincipalKindMismatch,
		aggregates.CodeUnknownRole, aggregates.CodeUnknownPermission} {
		if !seen[code] {
			t.Errorf("no case produced %s", code)
		}
	}
}

// TestUnavailable: with JetStream gone, a command answers unavailable within the service's
// time bound (shortened here from 9 s).
func TestUnavailable(t *testing.T) {
	e := startEnvWith(t, 1, Options{Timeout: 500 * time.Millisecond})
	e.reconpro()
	if err := e.Server.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	a := e.raw("acl.commands.acme.AssignRecord", `{"command_id":"CID","actor":"admin","type":"repair_order","id":"ro-1","principal":"bob"}`)
	if a.OK || a.Error == nil || a.Error.Code != aggregates.CodeUnavailable {
		t.Fatalf("answer %+v %+v, want unavailable", a, a.Error)
	}
}
