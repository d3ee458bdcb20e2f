package replay

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Comparisons of an engine's answers with the pure evaluator over the oracle's facts. Each
// returns a description of the first difference, "" when there is none.

var oraclePerms = []string{"case.view", "invoice.view", "client.view", "user.view", "report.view", "session.login", "case.edit"}

// sameErr compares two errors by code (nil equals nil).
func sameErr(got, want error) string {
	if (got == nil) != (want == nil) {
		return fmt.Sprintf("error %v, oracle %v", got, want)
	}
	if got != nil && aggregates.ErrorCode(got) != aggregates.ErrorCode(want) {
		return fmt.Sprintf("error %v, oracle %v", got, want)
	}
	return ""
}

func diffCheck(ctx context.Context, e *projections.Engine, m *aggregates.Memory, p, perm string, rec *events.RecordRef) string {
	got, err := e.Check(ctx, m.T.ID, projections.CheckQuery{Principal: p, Permission: perm, Record: rec})
	want, werr := aggregates.Check(m, p, perm, rec)
	if d := sameErr(err, werr); d != "" || err != nil {
		return d
	}
	g := aggregates.Decision{Allowed: got.Allowed, Reason: got.Reason, Grants: got.Grants, Events: got.Events}
	if want.Grants == nil {
		want.Grants = []aggregates.GrantUse{}
	}
	if want.Events == nil {
		want.Events = []string{}
	}
	if !reflect.DeepEqual(g, want) {
		return fmt.Sprintf("check %s %s %v:\n got %+v\nwant %+v", p, perm, rec, g, want)
	}
	return ""
}

func diffPermissions(ctx context.Context, e *projections.Engine, m *aggregates.Memory, p string) string {
	got, err := e.Permissions(ctx, m.T.ID, projections.PermissionsQuery{Principal: p})
	pr := m.Principal(p)
	var werr error
	if pr == nil || !pr.Exists {
		werr = aggregates.Errorf(aggregates.CodeNotFound, "no principal")
	}
	if d := sameErr(err, werr); d != "" || err != nil {
		return d
	}
	want := aggregates.NarrowedGrants(m.T, pr, "")
	if !reflect.DeepEqual(got.Grants, want) || got.Level != pr.Level || !slices.Equal(got.Roles, nonNilS(pr.Roles)) ||
		!slices.Equal(got.Denied, nonNilS(pr.Denied)) {
		return fmt.Sprintf("permissions %s:\n got %+v\nwant grants %+v level %s roles %v denied %v", p, got, want, pr.Level, pr.Roles, pr.Denied)
	}
	return ""
}

func diffVisible(ctx context.Context, e *projections.Engine, m *aggregates.Memory, p, typ string) string {
	return diffVisibleAction(ctx, e, m, p, typ, "view", 2)
}

// diffVisibleAction compares a listing of typ.action read in pages of limit.
func diffVisibleAction(ctx context.Context, e *projections.Engine, m *aggregates.Memory, p, typ, action string, limit int) string {
	want, werr := aggregates.Visible(m, p, typ, action)
	var got []string
	cursor := ""
	for {
		ans, err := e.Visible(ctx, m.T.ID, projections.VisibleQuery{Principal: p, Type: typ, Action: action, Limit: limit, Cursor: cursor})
		if d := sameErr(err, werr); d != "" || err != nil {
			return d
		}
		got = append(got, ans.IDs...)
		if cursor = ans.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(nonNilS(got), want) {
		return fmt.Sprintf("visible %s %s.%s: got %v, want %v", p, typ, action, got, want)
	}
	return ""
}

func diffPrincipals(ctx context.Context, e *projections.Engine, m *aggregates.Memory, rec events.RecordRef, perm string) string {
	got, err := e.Principals(ctx, m.T.ID, projections.PrincipalsQuery{Record: rec, Permission: perm})
	want, werr := aggregates.AllowedPrincipals(m, perm, rec)
	if d := sameErr(err, werr); d != "" || err != nil {
		return d
	}
	if !slices.Equal(got.Principals, want) {
		return fmt.Sprintf("principals %v %s: got %v, want %v", rec, perm, got.Principals, want)
	}
	return ""
}

func nonNilS(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// diffAll compares every query over the pools of the random history at one moment.
func diffAll(tb testing.TB, e *projections.Engine, m *aggregates.Memory) []string {
	ctx := context.Background()
	var out []string
	add := func(d string) {
		if d != "" {
			out = append(out, d)
		}
	}
	principals := append([]string{"admin"}, rhPrincipals...)
	for _, p := range principals {
		add(diffPermissions(ctx, e, m, p))
		for _, perm := range oraclePerms {
			add(diffCheck(ctx, e, m, p, perm, nil))
		}
		for _, typ := range rhTypes {
			add(diffVisible(ctx, e, m, p, typ))
			for _, id := range rhIDs {
				rec := &events.RecordRef{Type: typ, ID: id}
				add(diffCheck(ctx, e, m, p, typ+".view", rec))
			}
		}
	}
	for _, typ := range rhTypes {
		for _, id := range rhIDs {
			add(diffPrincipals(ctx, e, m, events.RecordRef{Type: typ, ID: id}, typ+".view"))
		}
	}
	return out
}
