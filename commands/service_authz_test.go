package commands

import (
	"errors"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestTeamAdministratorEscalation: a ReconPro team administrator manages the people of its
// team only, hands out only what it holds, and cannot make itself administrator.
func TestTeamAdministratorEscalation(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	email := "x@acme.test"
	cases := []struct {
		name string
		cmd  aggregates.Command
		code aggregates.Code
	}{
		{"a user outside its team", &aggregates.SetEmail{Principal: "carl", Email: &email}, aggregates.CodeForbidden},
		{"a role to a user outside its team", &aggregates.AssignRole{Principal: "carl", Role: "team_work_manager"}, aggregates.CodeForbidden},
		{"a permission it lacks", &aggregates.GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: aggregates.ScopeAll}, aggregates.CodeForbidden},
		{"itself administrator", &aggregates.AssignRole{Principal: "ta", Role: "administrator"}, aggregates.CodeForbidden},
		{"tenant settings", &aggregates.DefineRole{Role: "mine", Grants: []events.Grant{{Permission: "invoice.view", Scope: aggregates.ScopeUnitTeam}}}, aggregates.CodeForbidden},
		{"a record of another team", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-2", Units: []events.UnitRef{team("t2")}}}, aggregates.CodeForbidden},
		// What it may do, so that the refusals above are about reach, not about everything.
		{"a permission it holds, in its team", &aggregates.GrantPermission{Principal: "bob", Permission: "invoice.view", Scope: aggregates.ScopeUnitTeam}, ""},
		{"a role within its grants, in its team", &aggregates.AssignRole{Principal: "erin", Role: "team_work_manager"}, ""},
		{"a record of its team", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: "ro-3", Units: []events.UnitRef{team("t1")}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.lastSeq()
			if code := e.try("ta", c.cmd); code != c.code {
				t.Fatalf("got %q, want %q", code, c.code)
			}
			if c.code != "" && e.lastSeq() != before {
				t.Fatal("a refused command wrote")
			}
		})
	}
}

// TestInvalidationAcrossInstances: instance A decides with the actor's state in its cache;
// instance B revokes the actor's role; A must see it (through the event feed) and refuse, not
// decide on its stale copy.
func TestInvalidationAcrossInstances(t *testing.T) {
	e := startEnv(t, 2)
	e.reconpro()
	a, b := e.svcs[0], e.svcs[1]
	exec := func(s *Service, actor string, cmd aggregates.Command) error {
		cmd.Base().Tenant, cmd.Base().Actor = "acme", actor
		cmd.Base().CommandID = newID(t)
		_, err := s.Execute(e.ctx, cmd)
		return err
	}
	if err := exec(a, "ta", &aggregates.JoinUnit{Principal: "erin", Unit: team("t2")}); err != nil {
		t.Fatalf("A, before the revocation: %v", err)
	}
	if err := exec(b, "admin", &aggregates.RevokeRole{Principal: "ta", Role: "team_administrator"}); err != nil {
		t.Fatal(err)
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		err := exec(a, "ta", &aggregates.LeaveUnit{Principal: "erin", Unit: team("t2")})
		if aggregates.ErrorCode(err) == aggregates.CodeForbidden {
			return nil
		}
		return errors.New("A still lets ta manage erin: " + errString(err))
	})
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}
