package projections

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/acl-es/acl/aggregates"
	"github.com/nats-io/nats.go"
)

// QueryQueue is the queue group of the query servers: each request is answered by one acld.
const QueryQueue = "acl-queries"

// ServeNATS answers requests on acl.queries.<tenant>.<query> (queue group QueryQueue) with the
// same bodies and answers as HTTP, an error as {"error":{...}}. Requests are answered
// concurrently, at most ServerOptions.Concurrency at once; ctx ending or Close stops it.
func (s *Server) ServeNATS(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	sem := make(chan struct{}, s.opts.Concurrency)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // orders wg.Add before the final wg.Wait
		closed bool
	)
	sub, err := nc.QueueSubscribe("acl.queries.>", QueryQueue, func(m *nats.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			<-sem
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.answerNATS(ctx, m)
		}()
	})
	if err != nil {
		cancel()
		return fmt.Errorf("projections: subscribe to queries: %w", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sub.Unsubscribe()
			cancel()
			mu.Lock()
			closed = true
			mu.Unlock()
			wg.Wait()
		})
	}
	go func() { <-ctx.Done(); stop() }()
	s.natsMu.Lock()
	s.stops = append(s.stops, stop)
	s.natsMu.Unlock()
	return nil
}

func (s *Server) answerNATS(ctx context.Context, m *nats.Msg) {
	if m.Reply == "" {
		return // nobody to answer
	}
	// acl.queries.<tenant>.<query>: exactly four tokens.
	parts := strings.Split(m.Subject, ".")
	var answer []byte
	var err error
	var caller *aggregates.Caller
	if s.opts.IdentifyNATS != nil {
		caller, err = s.opts.IdentifyNATS(m.Header)
	}
	switch {
	case err != nil:
	case len(parts) != 4:
		err = invalid("subject %q: want acl.queries.<tenant>.<query>", m.Subject)
	default:
		answer, err = s.Query(ctx, caller, parts[2], parts[3], m.Data)
	}
	if err != nil {
		if codeOf(err) == aggregates.CodeInternal {
			s.log.Error("query failed", "subject", m.Subject, "err", err)
		}
		answer = errorBody(err)
	}
	if rerr := m.Respond(answer); rerr != nil {
		s.log.Warn("query answer not sent", "subject", m.Subject, "err", rerr)
	}
}
