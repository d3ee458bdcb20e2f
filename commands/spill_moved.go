package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// A bound on what a state remembers.
//
// SPEC section 5: a retry with the same command id answers the same, always, and the same id
// with another body is conflict. So a principal or record state remembered every command that
// ever wrote it: a record written 10^4 times held 10^4 of them (640 KB), copied by each
// writer's clone (cloneState), kept by the cache and encoded into the spill on every write, a
// cost a service running for months saw grow on its hot aggregates without bound.
//
// With the spill on, a state keeps its last keptCommands and moves older ones to the spill,
// each under a key of its own:
//
//	"#" subject " " command id -> uvarint seq, id hash, uvarint k, k times id event id
//
// (ids as in spill_ids.go), written in the same Pebble batch as the state that forgets them;
// the state counts them (aggregates.Commands.Moved). A state is moved out of only while it is
// the caller's alone, and the entry publishes it only after that batch is written (keep comes
// before the snapshot is stored), so no command reads a state whose moved commands are not in
// the spill yet. A command whose id is not among the kept ones of a state that moved some out
// reads its key: one Pebble Get, which the tables' Bloom filters answer for most new ids
// without reading a block.
//
// A key is a fact of the stream (the command was stored at seq with those events), true
// whatever state reads it, so nothing deletes one but a spill emptied for another stream: a
// state deleted (invalidated), the spill cleared after lost invalidations, and a state brought
// up by the follower all leave the keys. The keys sort before every subject ("#" < "a"), out
// of reach of clear and of scan.
//
// After a crash (the spill has no WAL; Pebble flushes its memtables in order, so what survives
// is every write up to some point) a spilled state has the keys of what it moved out; a state
// newer than the spill is brought up by the follower from the older spilled state, whose moved
// commands are there, or read from the stream, which gives every command again. Another
// instance builds its own keys from the stream the same way. Without the spill, states keep
// every command, as before. If the spill is turned off after an error, a state that moved
// commands out looks an id up in the stream instead (every message of its subject): slow, but
// right, and only until the cache drops the state.
const keptCommands = 48

// keptCommands is below aggregates' indexFrom (64): a writer's clone of a state that keeps 48
// and adds one scans them rather than building an index of ids it would drop at the next trim.

// forgetOld moves the commands of st beyond the last keptCommands out of it and returns them
// (none: empty). The caller owns st (it is not shared yet) and must store them (movedBatch).
func forgetOld(st any) aggregates.Commands {
	c := stateCommands(st)
	if c == nil || c.Len() <= keptCommands {
		return aggregates.Commands{}
	}
	return c.Forget(keptCommands)
}

// movedKey appends the key of command id moved out of subject's state.
func movedKey(b []byte, subject, id string) []byte {
	b = append(b, '#')
	b = append(b, subject...)
	b = append(b, ' ')
	return append(b, id...)
}

// appendMoved appends the value of a moved command's key.
func appendMoved(b []byte, r aggregates.CommandResult) []byte {
	return appendResult(b, r, newIDWriter())
}

// readMoved reads what appendMoved wrote.
func readMoved(v []byte) (aggregates.CommandResult, error) {
	r := &snapReader{s: string(v)}
	r.ids.on = true
	r.ids.ids = r.ids.first[:0]
	res := aggregates.CommandResult{Seq: r.uvarint(), Hash: r.id()}
	k := r.count(1)
	for range k {
		res.Events = append(res.Events, r.id())
	}
	if r.err == nil && r.s != "" {
		r.err = errors.New("data after the end")
	}
	return res, r.err
}

// movedBatch returns a batch with the keys of the commands old, moved out of subject's state;
// nil when there are none.
func (sp *spill) movedBatch(subject string, old *aggregates.Commands) *pebble.Batch {
	if old.Len() == 0 {
		return nil
	}
	b := sp.db.NewBatch()
	var k, v []byte
	old.Visit(func(id string, r aggregates.CommandResult) {
		k, v = movedKey(k[:0], subject, id), appendMoved(v[:0], r)
		_ = b.Set(k, v, nil) // copied into the batch; an in-memory batch does not fail
	})
	return b
}

// setWith stores subject's encoded state b in the same batch as the keys of mv (movedBatch),
// which it consumes.
func (sp *spill) setWith(subject string, b []byte, mv *pebble.Batch) error {
	if mv == nil {
		return sp.set(subject, b)
	}
	defer mv.Close()
	sp.seen.add([]byte(subject)) // first, as set does
	if err := mv.Set([]byte(subject), b, nil); err != nil {
		return err
	}
	return mv.Commit(sp.wo)
}

// deleteWith stores the keys of mv (movedBatch), which it consumes, then deletes subject's
// state: the state is not kept, but what it moved out must be.
func (sp *spill) deleteWith(subject string, mv *pebble.Batch) error {
	if mv != nil {
		err := mv.Commit(sp.wo)
		mv.Close()
		if err != nil {
			return err
		}
	}
	return sp.delete(subject)
}

// moved reads the key of command id moved out of subject's state.
func (sp *spill) moved(subject, id string) (aggregates.CommandResult, bool, error) {
	var kb [128]byte
	v, closer, err := sp.db.Get(movedKey(kb[:0], subject, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return aggregates.CommandResult{}, false, nil
	}
	if err != nil {
		return aggregates.CommandResult{}, false, err
	}
	defer closer.Close()
	r, err := readMoved(v)
	if err != nil {
		return aggregates.CommandResult{}, false, fmt.Errorf("commands: the moved command %s of %s: %w", id, subject, err)
	}
	return r, true, nil
}

// movedCommand answers what a state of e that moved commands out remembers of command id
// beyond those it kept: the spill's key, or, with the spill off, the stream.
func (c *cache) movedCommand(ctx context.Context, e *entry, id string) (aggregates.CommandResult, bool, error) {
	c.mu.Lock()
	sp := c.spill
	c.mu.Unlock()
	if sp != nil {
		r, ok, err := sp.moved(e.subject, id)
		if err == nil {
			return r, ok, nil
		}
		c.logger.Warn("moved command not read from the spill; reading the stream", "subject", e.subject, "err", err)
	}
	msgs, err := c.store.Load(ctx, e.subject, 0)
	if err != nil {
		return aggregates.CommandResult{}, false, err
	}
	c.loaded("stream")
	if e.ref.Kind == events.KindTenant {
		// A tenant's entry is never dropped: without this, every later command on it (each
		// access level change) would read its whole subject again until a restart, and no
		// snapshot could be written (upTo needs the moved ones). The messages read hold every
		// command it moved out: the index holds them all again, and answers id.
		e.cmds.restore(msgs)
		r, ok, _ := e.cmds.get(id)
		return r, ok, nil
	}
	var r aggregates.CommandResult
	found := false
	for _, m := range msgs {
		for _, env := range m.Events {
			if env.CommandID == id {
				r.Seq, r.Hash, found = m.Seq, env.CommandHash, true
				r.Events = append(r.Events, env.ID)
			}
		}
	}
	return r, found, nil
}

// eachMoved calls fn with every command moved out of subject's state (or a tenant's index).
func (sp *spill) eachMoved(subject string, fn func(id string, r aggregates.CommandResult)) error {
	lower := movedKey(nil, subject, "")
	upper := append(movedKey(nil, subject, "")[:len(lower)-1], ' '+1)
	it, err := sp.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("commands: the moved commands of %s: %w", subject, err)
	}
	for it.First(); it.Valid(); it.Next() {
		r, err := readMoved(it.Value())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("commands: the moved command %s of %s: %w", it.Key()[len(lower):], subject, err)
		}
		fn(string(it.Key()[len(lower):]), r)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("commands: the moved commands of %s: %w", subject, err)
	}
	return nil
}
