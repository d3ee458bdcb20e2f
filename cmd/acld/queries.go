package main

import (
	"context"

	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// queryNames are the queries acld serves (an identity file may grant only these);
// TestOpenAPI checks them against the servers' handlers.
var queryNames = []string{"check", "visible", "permissions", "principals", "recipients", "tenant", "history", "diff"}

// registerAudit adds the replay package's queries (history, diff) to the query servers; the
// projections package serves them but must not import replay. They read as_of themselves
// (OwnAsOf): the server does not build a state at as_of for them.
func (m *Main) registerAudit(s *projections.Server) {
	s.Handle("history", func(ctx context.Context, r projections.Request) (any, error) {
		var q replay.HistoryRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return m.replay.History(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	s.Handle("diff", func(ctx context.Context, r projections.Request) (any, error) {
		var q replay.DiffRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return m.replay.Diff(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
}

// asOf adapts the replay service's AsOf to the query servers' hook.
func (m *Main) asOf(ctx context.Context, tenant string, at projections.Moment) (*projections.Engine, func(), error) {
	return m.replay.AsOf(ctx, tenant, replay.Moment{Seq: at.Seq, Time: at.Time})
}
