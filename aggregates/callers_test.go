package aggregates

import (
	"strings"
	"testing"
)

// TestCallerRights: each list of an identity admits what it names or "*", and nothing else;
// system is never implied by "*"; a nil caller (acld itself) may do anything; every refusal is
// forbidden and names the identity and what it lacks.
func TestCallerRights(t *testing.T) {
	billing := &Caller{Name: "billing", Tenants: []string{"acme"}, Commands: []string{"RegisterRecord"},
		Queries: []string{"check"}, Actors: []string{"bot"}}
	ops := &Caller{Name: "ops", Tenants: []string{All}, Commands: []string{All}, Queries: []string{All}, Actors: []string{All}}
	var acld *Caller
	tests := []struct {
		name string
		err  *Error
		says string // "" = allowed
	}{
		{"billing: its tenant and command", billing.MayTenantCommand("acme", "RegisterRecord"), ""},
		{"billing: another tenant", billing.MayTenantCommand("globex", "RegisterRecord"), `may not address tenant "globex" (its tenants: acme)`},
		{"billing: another command", billing.MayTenantCommand("acme", "AssignRole"), "may not send AssignRole (its commands: RegisterRecord)"},
		{"billing: its actor", billing.MayAct("bot"), ""},
		{"billing: another actor", billing.MayAct("alice"), `may not act as "alice" (its actors: bot)`},
		{"billing: system", billing.MayAct(SystemActor), "may not act as system"},
		{"billing: its query", billing.MayQuery("acme", "check"), ""},
		{"billing: another query", billing.MayQuery("acme", "visible"), "may not ask visible (its queries: check)"},
		{"billing: a query on another tenant", billing.MayQuery("globex", "check"), `may not address tenant "globex"`},
		{"ops: any tenant, command, actor", ops.MayTenantCommand("globex", "AssignRole"), ""},
		{"ops: any principal", ops.MayAct("alice"), ""},
		{"ops: * is not system", ops.MayAct(SystemActor), "may not act as system"},
		{"ops: any query", ops.MayQuery("x", "diff"), ""},
		{"no lists: nothing", (&Caller{Name: "empty"}).MayQuery("acme", "check"), "(its tenants: none)"},
		{"unrestricted: system", Unrestricted("anonymous").MayAct(SystemActor), ""},
		{"acld: anything", acld.MayTenantCommand("x", "CreateTenant"), ""},
		{"acld: system", acld.MayAct(SystemActor), ""},
	}
	for _, tc := range tests {
		switch {
		case tc.says == "" && tc.err != nil:
			t.Errorf("%s: refused: %v", tc.name, tc.err)
		case tc.says != "" && tc.err == nil:
			t.Errorf("%s: allowed", tc.name)
		case tc.says != "" && (tc.err.Code != CodeForbidden || !strings.Contains(tc.err.Message, tc.says) || !strings.HasPrefix(tc.err.Message, "identity ")):
			t.Errorf("%s: %v, want forbidden saying %q", tc.name, tc.err, tc.says)
		}
	}
	if got := acld.Via("acld"); got != "acld" {
		t.Errorf("acld's via: %q", got)
	}
	if got := billing.Via("acld"); got != "billing" {
		t.Errorf("billing's via: %q", got)
	}
}

// TestDecodeStrict: names matched exactly, no field twice, no unknown field, no trailing data;
// DecodeLenient ignores unknown fields but matches names and refuses repeats the same way.
func TestDecodeStrict(t *testing.T) {
	type body struct {
		Actor string `json:"actor"`
		N     int    `json:"n"`
	}
	tests := []struct {
		in            string
		strict, loose string // "" = accepted, else a word of the message
	}{
		{`{"actor":"a","n":1}`, "", ""},
		{`{"actor":"a","Actor":"b"}`, `unknown field "Actor"`, ""},
		{`{"actor":"system","actor":"alice"}`, `field "actor" is given twice`, `field "actor" is given twice`},
		{`{"actor":"a","x":1}`, `unknown field "x"`, ""},
		{`{"actor":"a"} {}`, "malformed JSON", "malformed JSON"},
		{`{"n":"1"}`, `field "n": a JSON string cannot be read as an integer`, `cannot be read as an integer`},
		{``, "empty", "empty"},
	}
	for _, tc := range tests {
		for _, c := range []struct {
			decode func(string, []byte, any) *Error
			want   string
		}{{DecodeStrict, tc.strict}, {DecodeLenient, tc.loose}} {
			var b body
			err := c.decode("body", []byte(tc.in), &b)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s: refused: %v", tc.in, err)
			case c.want != "" && (err == nil || err.Code != CodeInvalidArgument || !strings.Contains(err.Message, c.want)):
				t.Errorf("%s: %v, want invalid_argument saying %q", tc.in, err, c.want)
			}
		}
	}
}
