package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// commandLoader loads tenants through the real command path: commands.Client requests over
// NATS to the command service, concurrency items at a time (each item's chain in order), phase
// after phase. Its latencies are those of the service under a loader's pipelined load, so each
// phase is also a measurement (RegisterPrincipal, SetAccessLevel, RegisterRecord...).
type commandLoader struct {
	clients     []*commands.Client
	concurrency int
	phases      map[string]*phaseStats
}

type phaseStats struct {
	hist    *histogram
	ops     int64
	elapsed time.Duration
}

func newCommandLoader(s *stack, connections, concurrency int) (*commandLoader, error) {
	l := &commandLoader{concurrency: max(concurrency, 1), phases: map[string]*phaseStats{}}
	for range max(connections, 1) {
		nc, err := s.connect()
		if err != nil {
			return nil, err
		}
		l.clients = append(l.clients, commands.NewClient(nc))
	}
	return l, nil
}

// loadTenant runs every phase of t; the first failed command stops it.
func (l *commandLoader) loadTenant(ctx context.Context, t *Tenant, progress func(n int)) error {
	for _, ph := range t.Phases() {
		if err := l.phase(ctx, t.ID, ph, progress); err != nil {
			return err
		}
	}
	return nil
}

func (l *commandLoader) phase(ctx context.Context, tenant string, ph Phase, progress func(n int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	hs := make([]*histogram, l.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.concurrency {
		hs[w] = newHistogram()
		c := l.clients[w%len(l.clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= ph.Items {
					return
				}
				for _, cmd := range ph.Item(i) {
					t0 := time.Now()
					_, err := c.Do(ctx, tenant, cmd)
					hs[w].record(time.Since(t0))
					if err != nil && !idempotentRerun(err) {
						once.Do(func() {
							firstErr = fmt.Errorf("%s item %d: %s: %w", ph.Name, i, cmd.Name(), err)
							cancel()
						})
						return
					}
					if progress != nil {
						progress(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	st := l.phases[ph.Name]
	if st == nil {
		st = &phaseStats{hist: newHistogram()}
		l.phases[ph.Name] = st
	}
	for _, h := range hs {
		st.hist.merge(h)
	}
	st.ops = int64(st.hist.n)
	st.elapsed += time.Since(start)
	return firstErr
}

// idempotentRerun: loading the same seed again into the same server answers the stored results
// (same command ids), except that a command whose aggregate changed since may be refused.
// Nothing of the kind happens on a fresh server.
func idempotentRerun(err error) bool {
	return aggregates.ErrorCode(err) == aggregates.CodeAlreadyExists
}
