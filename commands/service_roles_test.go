package commands

import (
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestRoleLifecycleOverNATS: who holds a role is read from every principal of the tenant in
// the store (not only the cached ones), for DeleteRole and DefineRole.
func TestRoleLifecycleOverNATS(t *testing.T) {
	e := startEnv(t, 1)
	e.reconpro()
	viewer := func() aggregates.Command {
		return &aggregates.DefineRole{Role: "viewer", Grants: []events.Grant{{Permission: "invoice.view", Scope: aggregates.ScopeAll}}}
	}
	steps := []struct {
		name  string
		actor string
		cmd   aggregates.Command
		code  aggregates.Code
	}{
		{"define", "admin", viewer(), ""},
		{"assign", "admin", &aggregates.AssignRole{Principal: "carl", Role: "viewer"}, ""},
		{"delete while held", "admin", &aggregates.DeleteRole{Role: "viewer"}, aggregates.CodeConflict},
		{"revoke", "admin", &aggregates.RevokeRole{Principal: "carl", Role: "viewer"}, ""},
		{"delete", "admin", &aggregates.DeleteRole{Role: "viewer"}, ""},
		{"assign deleted", "admin", &aggregates.AssignRole{Principal: "carl", Role: "viewer"}, aggregates.CodeUnknownRole},
		{"define again", "admin", viewer(), ""},
		{"the administrator role stays", "admin", &aggregates.DeleteRole{Role: "administrator"}, aggregates.CodeConflict},
	}
	for _, s := range steps {
		if code := e.try(s.actor, s.cmd); code != s.code {
			t.Fatalf("%s: got %q, want %q", s.name, code, s.code)
		}
	}
	// A fresh instance knows carl only from the store.
	fresh := e.addService(t, Options{})
	e.must("admin", &aggregates.AssignRole{Principal: "carl", Role: "viewer"})
	del := &aggregates.DeleteRole{CommandBase: aggregates.CommandBase{Tenant: "acme", Actor: "admin", CommandID: newID(t)}, Role: "viewer"}
	if _, err := fresh.Execute(e.ctx, del); aggregates.ErrorCode(err) != aggregates.CodeConflict {
		t.Fatalf("fresh instance deleting a held role: %v, want conflict", err)
	}
}
