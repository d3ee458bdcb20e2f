package main

import (
	"context"

	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// queryNames are the queries acld serves (an identity file may grant only these);
// TestOpenAPI checks them against the servers' handlers.
var queryNames = []string{"check", "visible", "permissions", "principals", "recipients", "tenant", "history", "diff", "review"}

// asOf adapts the replay service's AsOf to the query servers' hook.
func (m *Main) asOf(ctx context.Context, tenant string, at projections.Moment) (*projections.Engine, func(), error) {
	return m.replay.AsOf(ctx, tenant, replay.Moment{Seq: at.Seq, Time: at.Time})
}
