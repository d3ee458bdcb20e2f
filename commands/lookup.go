package commands

import (
	"context"
	"encoding/json"

	"github.com/acl-es/acl/aggregates"
)

// Lookup answers whether this server stored a command: the answer a retry of it would get
// (the sequence and event ids stored the first time) when its aggregates remember its command
// id with the same body, conflict when they remember it with another body, and not_found
// (ErrNotStored's message) when they do not remember it. It decides nothing, appends nothing and
// remembers nothing, so it can be asked of a server before sending it anything: aclctl import
// asks it, on a resume, whether the server holds the command it stored last before the
// interruption, at the sequence it was answered (BatchRequest.Lookup).
//
// A command that changed nothing was never remembered, so it answers not_found too: ask it
// only of a command whose answer had events.
func (s *Service) Lookup(ctx context.Context, cmd aggregates.Command) (Result, error) {
	x, err := s.prepare(cmd)
	if err != nil {
		return Result{}, err
	}
	// The write locks, in Execute's order, so that a command of the same id being carried out
	// on this instance is either answered before the lookup reads or not begun.
	for _, e := range x.entries {
		e.write.Lock()
		defer e.write.Unlock()
	}
	snaps := make([]*snapshot, len(x.entries))
	var res Result
	var ok bool
	for range 2 {
		for i, e := range x.entries {
			snap, err := s.cache.fresh(ctx, e)
			if err != nil {
				return Result{}, storeError(x.op, err)
			}
			snaps[i] = snap
		}
		var missing []int
		res, ok, missing, err = x.previous(ctx, snaps)
		if err != nil {
			return Result{}, err
		}
		if x.rechecked {
			break
		}
		if !ok {
			// Not remembered by states that may be behind the stream (see
			// execution.current): read those again once.
			current, err := x.current(ctx, snaps)
			if err != nil {
				return Result{}, storeError(x.op, err)
			}
			if current {
				break
			}
		} else if len(missing) > 0 {
			// An aggregate that does not remember the command while another does may be
			// behind the stream: read it again once (see execution.attempt).
			for _, i := range missing {
				x.entries[i].stale()
			}
		} else {
			break
		}
		x.rechecked = true
	}
	if !ok {
		return Result{}, &aggregates.Error{Code: aggregates.CodeNotFound, Op: x.op,
			Message: ErrNotStored + ": command_id " + cmd.Base().CommandID + " is not remembered by the aggregates it writes"}
	}
	return res, nil
}

// ErrNotStored begins the message of Lookup's not_found: the command is not stored here.
const ErrNotStored = "not stored on this server"

// lookupBatch answers a batch of lookups (BatchRequest.Lookup): each command decoded with the
// caller's rights, as it would be carried out, then looked up.
func (s *Service) lookupBatch(ctx context.Context, caller *aggregates.Caller, tenant string, cmds []BatchCommand) BatchAnswer {
	ans := BatchAnswer{OK: true, Results: make([]json.RawMessage, len(cmds))}
	for i, bc := range cmds {
		cmd, err := s.decodeInBatch(caller, tenant, bc)
		var res Result
		if err == nil {
			res, err = s.Lookup(ctx, cmd)
		}
		if err != nil {
			ans.Results[i] = encodeError(err)
		} else {
			ans.Results[i] = encodeResult(res)
		}
	}
	return ans
}
