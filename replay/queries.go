package replay

import (
	"context"

	"github.com/acl-es/acl/aggregates"

	"github.com/acl-es/acl/projections"
)

// ServeQueries adds the service's queries (history, diff, review) to a query server; projections
// serves them but must not import replay. They read as_of themselves (OwnAsOf): the server does
// not build a state at as_of for them. acld and aclbench serve them this way.
func (s *Service) ServeQueries(srv *projections.Server) {
	srv.Handle("history", func(ctx context.Context, r projections.Request) (any, error) {
		var q HistoryRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return s.History(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	srv.Handle("diff", func(ctx context.Context, r projections.Request) (any, error) {
		var q DiffRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return s.Diff(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
	srv.Handle("review", func(ctx context.Context, r projections.Request) (any, error) {
		var q aggregates.ReviewRequest
		if err := projections.DecodeBody(r.Body, &q); err != nil {
			return nil, err
		}
		return s.Review(ctx, r.Tenant, q)
	}, projections.OwnAsOf())
}
