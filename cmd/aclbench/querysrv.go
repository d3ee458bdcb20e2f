package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/acl-es/acl/cmd/acld/console"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// startQueryServers serves the read side over HTTP (on a loopback port) and NATS the way acld
// does: projections.Server with the live engine and, when replay runs, its as_of hook. It
// returns the HTTP base URL; stop ends both.
func (s *stack) startQueryServers(ctx context.Context) (string, error) {
	if s.qsrv != nil {
		return s.httpURL, nil
	}
	if s.engine == nil {
		return "", errors.New("query servers need the read side")
	}
	opts := projections.ServerOptions{Logger: s.cfg.log}
	if s.replay != nil {
		rs := s.replay
		opts.AsOf = func(ctx context.Context, tenant string, at projections.Moment) (*projections.Engine, func(), error) {
			return rs.AsOf(ctx, tenant, replay.Moment{Seq: at.Seq, Time: at.Time})
		}
	}
	srv := projections.NewServer(s.engine, s.proj, opts)
	if s.replay != nil {
		s.replay.ServeQueries(srv)
	}
	nc, err := s.connectOwner()
	if err != nil {
		return "", err
	}
	if err := srv.ServeNATS(ctx, nc); err != nil {
		return "", err
	}
	if err := nc.Flush(); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return "", err
	}
	// The auditor's console as acld serves it, over the same server (the console workload).
	mux := http.NewServeMux()
	mux.Handle("/ui/", console.New(srv, console.Options{Logger: s.cfg.log}).Handler())
	mux.Handle("/", srv.Handler(nil))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.log.Error("HTTP server stopped", "err", err)
		}
	}()
	s.qsrv, s.hsrv = srv, hs
	s.httpURL = fmt.Sprintf("http://%s", ln.Addr())
	return s.httpURL, nil
}

// stopQueryServers stops the HTTP server and the NATS subscriptions.
func (s *stack) stopQueryServers() {
	if s.hsrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.hsrv.Shutdown(ctx)
		cancel()
	}
	if s.qsrv != nil {
		s.qsrv.Close()
	}
	s.qsrv, s.hsrv = nil, nil
}
