package commands

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestWorkersReused: commands one after another are answered by one worker, a burst by no
// more workers than Options.Concurrency, every command of it answered, and Close does not
// wait for idle workers to time out.
func TestWorkersReused(t *testing.T) {
	e := startEnvWith(t, 1, Options{Concurrency: 3})
	e.reconpro()
	s := e.svcs[0]
	before := s.started.Load()
	for i := range 20 {
		e.must("admin", &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: fmt.Sprintf("seq-%d", i),
			Units: []events.UnitRef{team("t1")}}})
	}
	if n := s.started.Load() - before; n > 1 {
		t.Fatalf("20 commands one after another started %d workers, want at most 1 (the earlier ones' worker is idle)", n)
	}

	const burst = 40
	var wg sync.WaitGroup
	errs := make([]error, burst)
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "repair_order", ID: fmt.Sprintf("burst-%d", i),
				Units: []events.UnitRef{team("t1")}}}
			cmd.Actor = "admin"
			_, errs[i] = e.c.Do(e.ctx, "acme", cmd)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("command %d of the burst: %v", i, err)
		}
	}
	if n := s.started.Load(); n > 3+before {
		t.Fatalf("%d workers started in all, want at most Concurrency (3) beyond the %d before", n, before)
	}
	for i := range burst {
		ref := events.RecordAggregate("repair_order", fmt.Sprintf("burst-%d", i))
		if r := e.state(ref).(*aggregates.Record); !r.Exists {
			t.Fatalf("burst-%d not stored", i)
		}
	}

	start := time.Now()
	s.Close()
	if d := time.Since(start); d >= workerIdle/2 {
		t.Fatalf("Close took %v: it waited for the idle workers to time out (%v)", d, workerIdle)
	}
}
