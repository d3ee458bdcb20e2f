package commands

import (
	"context"
	"maps"
	"sync"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// commandIndex is a tenant's memory of the commands that wrote it (aggregates.Tenant.Commands),
// kept by its cache entry instead of in its states. A tenant remembers every command that ever
// wrote it, one per access level change (10^5 at 10^5 principals), and a writer copies the
// shared state before applying to it: with the memory in the state, every seat change copied
// it whole (BenchmarkSeatChangeState). The cached tenant states therefore hold an empty
// Commands map; what Apply put there is moved here (absorb) before a state is shared.
//
// An entry of the index is a fact of the stream (the command was stored at that sequence with
// those events), true whatever state a decision reads, so a retry may be answered from it even
// when it is newer than that state. A command writes one message per aggregate, so a result is
// that of one message; the same message absorbed twice (a load and a writer both applying it)
// gives the same result.
type commandIndex struct {
	mu sync.RWMutex
	m  map[string]aggregates.CommandResult
}

// absorb moves the results t remembers into the index and empties t's map. The caller owns t
// (it is not shared yet).
func (ix *commandIndex) absorb(t *aggregates.Tenant) {
	if len(t.Commands) == 0 {
		return
	}
	ix.mu.Lock()
	if ix.m == nil {
		ix.m = make(map[string]aggregates.CommandResult, len(t.Commands))
	}
	for id, r := range t.Commands {
		if old, ok := ix.m[id]; !ok || r.Seq > old.Seq {
			ix.m[id] = r
		}
	}
	ix.mu.Unlock()
	t.Commands = map[string]aggregates.CommandResult{}
}

func (ix *commandIndex) get(id string) (aggregates.CommandResult, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.m[id]
	return r, ok
}

func (ix *commandIndex) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.m)
}

// upTo returns a copy of the results of messages up to seq: what a state at seq remembers.
func (ix *commandIndex) upTo(seq uint64) map[string]aggregates.CommandResult {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string]aggregates.CommandResult, len(ix.m))
	for id, r := range ix.m {
		if r.Seq <= seq {
			out[id] = r
		}
	}
	return out
}

// absorbState moves a tenant state's remembered commands into the entry's index before the
// state is shared; other aggregates keep theirs in their states (they stay small).
func (e *entry) absorbState(st any) {
	if t, ok := st.(*aggregates.Tenant); ok && e.ref.Kind == events.KindTenant {
		e.cmds.absorb(t)
	}
}

// command returns what the aggregate remembers of command id, st being a state of it: in
// memory, or, for an id st does not keep when st moved commands out, in the spill
// (spill_moved.go).
func (e *entry) command(ctx context.Context, st any, id string) (aggregates.CommandResult, bool, error) {
	if e.ref.Kind == events.KindTenant {
		r, ok := e.cmds.get(id)
		return r, ok, nil
	}
	c := stateCommands(st)
	if c == nil {
		return aggregates.CommandResult{}, false, nil
	}
	if r, ok := c.Get(id); ok || c.Moved() == 0 || e.c == nil {
		return r, ok, nil
	}
	return e.c.movedCommand(ctx, e, id)
}

// withCommands returns a copy of a cached tenant state with the commands it remembers, as a
// state replayed from the stream has them (tests, snapshots).
func (e *entry) withCommands(t *aggregates.Tenant) *aggregates.Tenant {
	c := *t
	c.Commands = e.cmds.upTo(t.Seq)
	maps.Copy(c.Commands, t.Commands)
	return &c
}
