package commands

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
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
//
// With the spill on, the index is bounded too: past 2*keptTenantCommands it moves all but the
// newest keptTenantCommands to the spill's keys of moved commands (spill_moved.go), as a
// principal's or record's state does, and counts them (moved); an id it does not hold is then
// read there. A snapshot still holds every command (upTo reads the moved ones back), so that
// another instance, or this one after a restart, starts from a complete memory.
type commandIndex struct {
	mu    sync.RWMutex
	m     map[string]aggregates.CommandResult
	moved uint64 // commands moved to the spill
}

// keptTenantCommands is how many commands a tenant's index keeps once it moved some out: a
// tenant is written by every access level change, and its index is never copied, so it may
// keep many more than a state does (a few hundred KB). A variable: tests lower it.
var keptTenantCommands = 1024

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

// get returns the result of command id, and whether the index moved commands out (then an id
// it does not hold may be in the spill).
func (ix *commandIndex) get(id string) (aggregates.CommandResult, bool, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.m[id]
	return r, ok, ix.moved > 0
}

// len is the number of commands remembered, those moved out included.
func (ix *commandIndex) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.m) + int(ix.moved)
}

// upTo returns a copy of the results of messages up to seq: what a state at seq remembers,
// those moved to the spill included (read back from sp; an error when they cannot be).
func (ix *commandIndex) upTo(seq uint64, sp *spill, subject string) (map[string]aggregates.CommandResult, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string]aggregates.CommandResult, len(ix.m)+int(ix.moved))
	if ix.moved > 0 {
		if sp == nil {
			return nil, errors.New("commands: a tenant's moved commands: the spill is off")
		}
		err := sp.eachMoved(subject, func(id string, r aggregates.CommandResult) {
			if r.Seq <= seq {
				out[id] = r
			}
		})
		if err != nil {
			return nil, err
		}
	}
	for id, r := range ix.m {
		if r.Seq <= seq {
			out[id] = r
		}
	}
	return out, nil
}

// absorbState moves a tenant state's remembered commands into the entry's index before the
// state is shared, and bounds the index (moveOut); other aggregates keep theirs in their
// states (cache.keep bounds those).
func (e *entry) absorbState(st any) {
	if t, ok := st.(*aggregates.Tenant); ok && e.ref.Kind == events.KindTenant {
		e.cmds.absorb(t)
		if e.c != nil {
			e.c.moveOut(e)
		}
	}
}

// moveOut moves all but the newest keptTenantCommands of a tenant's index to the spill, once
// it holds twice as many. Under the index's lock, so that a lookup finds an id either in the
// index or, with moved counted, in the spill; the batch is committed under the cache's mu, as
// every spill write. On an error the index keeps them (and the spill goes off).
func (c *cache) moveOut(e *entry) {
	ix := &e.cmds
	if ix.lenHeld() <= 2*keptTenantCommands {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.m) <= 2*keptTenantCommands {
		return
	}
	type aged struct {
		id  string
		seq uint64
	}
	ids := make([]aged, 0, len(ix.m))
	for id, r := range ix.m {
		ids = append(ids, aged{id, r.Seq})
	}
	slices.SortFunc(ids, func(a, b aged) int { return cmp.Compare(a.seq, b.seq) })
	old := ids[:len(ids)-keptTenantCommands]
	c.mu.Lock()
	sp := c.spill
	c.mu.Unlock()
	if sp == nil {
		return
	}
	// Built outside mu, which every command takes: the first load of a tenant after a start
	// moves all but 1,024 of every command it ever had.
	b := sp.db.NewBatch()
	defer b.Close()
	var k, v []byte
	for _, a := range old {
		k, v = movedKey(k[:0], e.subject, a.id), appendMoved(v[:0], ix.m[a.id])
		_ = b.Set(k, v, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spill != sp {
		return // turned off meanwhile: the index keeps them
	}
	if err := b.Commit(sp.wo); err != nil {
		c.spillErrLocked(err)
		return
	}
	kept := make(map[string]aggregates.CommandResult, 2*keptTenantCommands) // maps do not shrink
	for _, a := range ids[len(old):] {
		kept[a.id] = ix.m[a.id]
	}
	ix.m = kept
	ix.moved += uint64(len(old))
}

// restore puts back in memory the commands of msgs, a tenant's whole subject read from the
// stream, and forgets that any were moved out: they are all among msgs (a command is moved out
// only once stored, and msgs were read after). For a spill that can no longer be read.
func (ix *commandIndex) restore(msgs []events.Message) {
	var m map[string]aggregates.CommandResult
	for _, msg := range msgs {
		for _, env := range msg.Events {
			aggregates.RememberCommand(&m, env) // as Tenant.Apply remembers them
		}
	}
	ix.absorb(&aggregates.Tenant{Commands: m})
	ix.mu.Lock()
	ix.moved = 0
	ix.mu.Unlock()
}

// lenHeld is the number of commands the index holds in memory.
func (ix *commandIndex) lenHeld() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.m)
}

// command returns what the aggregate remembers of command id, st being a state of it: in
// memory, or, for an id st does not keep when st moved commands out, in the spill
// (spill_moved.go).
func (e *entry) command(ctx context.Context, st any, id string) (aggregates.CommandResult, bool, error) {
	if e.ref.Kind == events.KindTenant {
		r, ok, moved := e.cmds.get(id)
		if ok || !moved || e.c == nil {
			return r, ok, nil
		}
		return e.c.movedCommand(ctx, e, id)
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
// state replayed from the stream has them (tests, snapshots), those moved to the spill
// included.
func (e *entry) withCommands(t *aggregates.Tenant) (*aggregates.Tenant, error) {
	c := *t
	var sp *spill
	if e.c != nil {
		e.c.mu.Lock()
		sp = e.c.spill
		e.c.mu.Unlock()
	}
	cmds, err := e.cmds.upTo(t.Seq, sp, e.subject)
	if err != nil {
		return nil, err
	}
	c.Commands = cmds
	maps.Copy(c.Commands, t.Commands)
	return &c, nil
}
