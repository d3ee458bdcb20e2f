package commands

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Execute carries out one decoded command: idempotency, decision on cached state, append, and
// the answer. It is what a request on acl.commands.<tenant>.<Name> runs; the tenant is the
// command's Base().Tenant. Errors are *aggregates.Error.
func (s *Service) Execute(ctx context.Context, cmd aggregates.Command) (Result, error) {
	x, err := s.prepare(cmd)
	if err != nil {
		return Result{}, err
	}
	if cmd.Base().DryRun {
		return x.dryRun(ctx)
	}
	x.speculate = true
	for range s.opts.MaxAttempts + maxRereads {
		rereads := x.rereads
		res, retry, err := x.attempt(ctx)
		if !retry {
			return res, err
		}
		x.speculate = false
		if x.rereads > rereads { // a re-read of a duplicate: give a lagging replica a moment
			select {
			case <-time.After(time.Duration(x.rereads) * rereadPause):
			case <-ctx.Done():
				return Result{}, storeError(x.op, ctx.Err())
			}
		}
	}
	return Result{}, &aggregates.Error{Code: aggregates.CodeConflict, Op: x.op,
		Message: "the aggregates of this command kept changing while it was decided; retry it with the same command_id"}
}

// prepare checks a decoded command and gives its execution: the cache entries of the aggregates
// it may write, in lock order.
func (s *Service) prepare(cmd aggregates.Command) (*execution, error) {
	op := cmd.Name()
	if err := aggregates.Validate(cmd); err != nil {
		return nil, withOp(err, op)
	}
	if err := checkBase(cmd.Base()); err != nil {
		return nil, withOp(err, op)
	}
	if b := cmd.Base(); b.Via == "" {
		b.Via = s.opts.Self // a command given in-process (Execute, not a request) is acld's own
	}
	s.checkDropped()
	x := &execution{s: s, cmd: cmd, op: op, hash: Hash(cmd)}
	for _, ref := range targets(cmd) {
		e, err := s.cache.entry(cmd.Base().Tenant, ref)
		if err != nil {
			return nil, internal(op, err)
		}
		x.entries = append(x.entries, e)
	}
	// One lock order for every command: no two commands wait for each other.
	slices.SortFunc(x.entries, func(a, b *entry) int { return cmp.Compare(a.subject, b.subject) })
	return x, nil
}

// execution is one command's attempts.
type execution struct {
	s       *Service
	cmd     aggregates.Command
	op      string
	hash    string
	entries []*entry // the aggregates it may write, in lock order
	// duplicate: the store already had one of this command's message ids, so an attempt that
	// finds no trace of the command id in the aggregates knows it was used for another one.
	duplicate bool
	// speculate: this attempt may assume that an aggregate it creates is empty (see read).
	speculate bool
	// rereads: how often a duplicate without a trace of the command was read again.
	rereads int
	// rechecked: the aggregates that did not remember the command while another one did
	// were read again from the store (see attempt).
	rechecked bool
}

// maxRereads bounds the re-reads of a duplicate (see attempt); each waits rereadPause longer.
const (
	maxRereads  = 3
	rereadPause = 50 * time.Millisecond
)

// attempt decides and appends once, holding the write locks of the command's aggregates.
// retry reports a lost race (a conflict on an expected sequence or a duplicate message id):
// the entries are stale and the next attempt reloads them.
func (x *execution) attempt(ctx context.Context) (res Result, retry bool, err error) {
	for _, e := range x.entries {
		e.write.Lock()
		defer e.write.Unlock()
	}
	b := x.cmd.Base()
	f := newFacts(ctx, x.s.cache, b.Tenant)
	snaps := make([]*snapshot, len(x.entries))
	for i, e := range x.entries {
		if snaps[i], err = x.read(ctx, e); err != nil {
			return Result{}, false, storeError(x.op, err)
		}
		f.pin(e.ref, snaps[i].state)
	}
	if res, ok, missing, err := x.previous(ctx, snaps); ok || err != nil {
		if ok && x.speculated(snaps) {
			// Another aggregate remembers the command: the one assumed empty may too (a retry
			// whose state the cache dropped). Read them all, or the answer would miss its part.
			return Result{}, true, nil
		}
		if err == nil && len(missing) > 0 && !x.rechecked {
			// One aggregate remembers the command and another does not: the command wrote
			// only the one (RemovePrincipal of a principal without a seat), or the other's
			// state is behind the stream (its invalidation was on its way when it was read,
			// the one of the aggregate read next had come). Answered so, a retry of a seat
			// change got the tenant's event and not the principal's. Read them from the store.
			x.rechecked = true
			for _, i := range missing {
				x.entries[i].stale()
			}
			return Result{}, true, nil
		}
		return res, false, err
	}
	if x.duplicate && x.rereads < maxRereads {
		// The store said this message id is stored, yet the aggregates read show no trace of
		// the command: the id was used for another command, or the read was answered by a
		// replica that has not applied the message yet (direct gets may be served by any
		// replica of a clustered stream). Read again, after a pause, before saying conflict.
		x.rereads++
		for _, e := range x.entries {
			e.stale()
		}
		return Result{}, true, nil
	}
	if x.duplicate {
		return Result{}, false, &aggregates.Error{Code: aggregates.CodeConflict, Op: x.op,
			Message: "command_id " + b.CommandID + " was already used for another command; use a new id for a new command"}
	}
	now := x.s.opts.Now().UTC()
	ws, err := aggregates.Decide(f, x.cmd, now)
	if f.err != nil {
		return Result{}, false, storeError(x.op, f.err)
	}
	if err != nil || !writesEvents(ws) {
		// Answered without an append, so the store checks nothing: see current.
		if ok, cerr := x.current(ctx, snaps); cerr != nil {
			return Result{}, false, storeError(x.op, cerr)
		} else if !ok {
			return Result{}, true, nil
		}
	}
	if err != nil {
		return Result{}, false, err
	}
	return x.append(ctx, ws, snaps, now)
}

// writesEvents reports whether a decision writes any event.
func writesEvents(ws []aggregates.Write) bool {
	return slices.ContainsFunc(ws, func(w aggregates.Write) bool { return len(w.Events) > 0 })
}

// current reports whether the states of the command's aggregates that a decision read are
// still their subjects' last, and marks the entries of those that are not stale. A decision
// that writes appends expecting each state's sequence, so the store refuses one decided on a
// state behind it; a decision that writes nothing (the command changes nothing, or is refused)
// is answered without the store. The cache learns of other instances' writes by a subscription
// that may lag behind the stream (a backlog under load), so without this check a RevokeRole
// sent right after another instance stored the AssignRole answered ok and changed nothing (the
// role stayed held), and a retry whose first answer was lost answered no events. States
// assumed empty (a creation) and those an open atomic batch left are checked by their appends.
func (x *execution) current(ctx context.Context, snaps []*snapshot) (bool, error) {
	ok := true
	for i, s := range snaps {
		if s.assumed || s.pending {
			continue
		}
		newer, err := x.s.store.Newer(ctx, x.entries[i].subject, stateSeq(s.state))
		if err != nil {
			return false, err
		}
		if newer {
			x.entries[i].stale()
			ok = false
		}
	}
	return ok, nil
}

// read returns the state a decision starts from. The first attempt of a command that creates
// its aggregate (RegisterRecord, RegisterPrincipal, CreateTenant) assumes that an aggregate the
// cache never loaded is empty instead of reading its subject: the append expects sequence 0,
// so if the subject does have messages (the id exists, or this command was stored before) the
// store refuses it, and the next attempt reads the subject. The assumption is never put in the
// cache, so no other command reads it.
func (x *execution) read(ctx context.Context, e *entry) (*snapshot, error) {
	if x.speculate && creates(x.cmd, e.ref) && e.snap.Load() == nil && !x.s.cache.spilled(e) {
		gen := e.gen.Load()
		pos, _, inv := x.s.cache.bounds(e.subject)
		return &snapshot{state: newState(e.ref), gen: gen, assumed: true, pos: pos, inv: inv}, nil
	}
	return x.s.cache.fresh(ctx, e)
}

// speculated reports whether one of the states read was assumed empty (see read).
func (x *execution) speculated(snaps []*snapshot) bool {
	return slices.ContainsFunc(snaps, func(s *snapshot) bool { return s.assumed })
}

// previous answers a retry: when the command's aggregates remember its id with the same hash,
// the result stored the first time (sequence of the last message, event ids in stream order);
// with another hash, conflict. missing are the indexes of the entries whose states do not
// remember it when others do: the result lacks their part if those states are behind.
func (x *execution) previous(ctx context.Context, snaps []*snapshot) (res Result, ok bool, missing []int, err error) {
	id := x.cmd.Base().CommandID
	var found []aggregates.CommandResult
	for i, s := range snaps {
		r, ok, err := x.entries[i].command(ctx, s.state, id)
		if err != nil {
			return Result{}, false, nil, storeError(x.op, err)
		}
		if ok {
			found = append(found, r)
		} else {
			missing = append(missing, i)
		}
	}
	if len(found) == 0 {
		return Result{}, false, nil, nil
	}
	for _, r := range found {
		if r.Hash != "" && r.Hash != x.hash {
			return Result{}, true, nil, &aggregates.Error{Code: aggregates.CodeConflict, Op: x.op,
				Message: "command_id " + id + " was already used with another body; a retry must repeat the command exactly, a new command needs a new id"}
		}
	}
	slices.SortFunc(found, func(a, b aggregates.CommandResult) int { return cmp.Compare(a.Seq, b.Seq) })
	res = Result{Events: []string{}}
	for _, r := range found {
		res.Seq = max(res.Seq, r.Seq)
		res.Events = append(res.Events, r.Events...)
	}
	return res, true, missing, nil
}

// msgID is the message id of a command's write to ref when it writes n aggregates, so that
// JetStream's de-duplication recognizes a retry: the command id and its tenant for one; with
// the aggregate for several, one per message of the batch. The stream de-duplicates across
// every subject: with the command id alone, a command of one tenant made the command of
// another tenant that came with the same id (a caller who knew it, or an id derived from a
// business key) a duplicate, refused as conflict for the whole duplicate window.
func msgID(cmd aggregates.Command, ref events.AggregateRef, n int) string {
	b := cmd.Base()
	if n > 1 {
		return b.CommandID + "/" + b.Tenant + "/" + aggregateKey(ref)
	}
	return b.CommandID + "/" + b.Tenant
}

// pendingWrite is one message a decision writes: the index of its aggregate in the execution's
// entries, and the message.
type pendingWrite struct {
	i    int
	item events.BatchItem
}

// envelopes turns a decision into its messages, one per aggregate with events (message ids not
// set), and the highest sequence the decision read.
func (x *execution) envelopes(ws []aggregates.Write, now time.Time) ([]pendingWrite, uint64, error) {
	b := x.cmd.Base()
	var writes []pendingWrite
	var seq uint64
	for _, w := range ws {
		seq = max(seq, w.Expected)
		if len(w.Events) == 0 {
			continue
		}
		i := slices.IndexFunc(x.entries, func(e *entry) bool { return e.ref == w.Aggregate })
		if i < 0 {
			return nil, 0, internal(x.op, errors.New("decision writes an aggregate the command did not lock: "+aggregateKey(w.Aggregate)))
		}
		meta := events.Meta{Tenant: b.Tenant, Aggregate: w.Aggregate, Actor: b.Actor, Via: b.Via, CommandID: b.CommandID,
			CommandHash: x.hash, Cause: x.op, Time: now}
		envs := make([]events.Envelope, 0, len(w.Events))
		for _, d := range w.Events {
			env, err := events.New(meta, d)
			if err != nil {
				return nil, 0, internal(x.op, err)
			}
			envs = append(envs, env)
		}
		writes = append(writes, pendingWrite{i: i, item: events.BatchItem{Subject: x.entries[i].subject, Expected: w.Expected, Events: envs}})
	}
	return writes, seq, nil
}

// append writes the decision: one message per aggregate with events, a batch when there are
// two, each expecting the sequence the decision read.
func (x *execution) append(ctx context.Context, ws []aggregates.Write, snaps []*snapshot, now time.Time) (Result, bool, error) {
	writes, seq, err := x.envelopes(ws, now)
	if err != nil {
		return Result{}, false, err
	}
	if len(writes) == 0 {
		return Result{Seq: seq, Events: []string{}}, false, nil
	}
	items := make([]events.BatchItem, len(writes))
	for k := range writes {
		writes[k].item.MsgID = msgID(x.cmd, x.entries[writes[k].i].ref, len(writes))
		items[k] = writes[k].item
		x.s.noteOwn(items[k].MsgID)
		x.offer(writes[k], snaps[writes[k].i])
	}
	app, data, err := x.s.store.AppendAtomicData(ctx, items)
	if err != nil || app.Duplicate {
		for _, w := range writes {
			x.entries[w.i].stale()
		}
		switch {
		case err == nil:
			x.duplicate = true
			return Result{}, true, nil
		case errors.Is(err, events.ErrConflict):
			return Result{}, true, nil
		}
		return Result{}, false, storeError(x.op, err)
	}
	res := Result{Seq: app.Seq}
	for _, w := range writes {
		for _, env := range w.item.Events {
			res.Events = append(res.Events, env.ID)
		}
	}
	if len(writes) == 1 || app.Count == len(writes) {
		// A batch's messages are stored one after another: each one's sequence is known.
		first := app.Seq + 1 - uint64(len(writes))
		for k, w := range writes {
			// The append's validation decoded the events' data: applied as it is.
			var d []events.Data
			if k < len(data) {
				d = data[k]
			}
			x.publish(w.i, snaps[w.i], w.item.Events, d, first+uint64(k))
		}
	} else {
		// A server that does not say how many messages it stored: the next command reads
		// the aggregates from the store.
		for _, w := range writes {
			x.entries[w.i].stale()
		}
	}
	return res, false, nil
}

// publish applies the appended events to a copy of the state they were decided on and makes it
// the entry's state. data is the events' data as the append's validation decoded it (one for
// each envelope, the caller's to give away), or nil to decode them here.
func (x *execution) publish(i int, snap *snapshot, envs []events.Envelope, data []events.Data, seq uint64) {
	st := snap.state
	if !snap.assumed {
		st = cloneState(st)
	}
	// else: an aggregate assumed empty (read) got a state of its own, which no other command
	// sees, and which the decision no longer reads: the events apply to it in place (every
	// aggregate an import creates copied its empty state).
	for k, env := range envs {
		env.Seq = seq
		var err error
		if len(data) == len(envs) {
			err = applyData(st, env, data[k])
		} else {
			err = applyEnvelope(st, env)
		}
		if err != nil {
			x.entries[i].stale() // cannot happen for events just validated; reload to be safe
			return
		}
	}
	x.entries[i].absorbState(st)
	x.s.cache.publish(x.entries[i], st, snap)
	if sn := x.s.cache.snaps.Load(); sn != nil {
		sn.added(x.entries[i], st, len(envs))
	}
}

// offer tells Options.Offer of the state write w was decided on, before its append. Not for
// a tenant, nor for a state assumed empty (a creation: the projector reads nothing for it).
func (x *execution) offer(w pendingWrite, snap *snapshot) {
	o := x.s.opts.Offer
	if o == nil || snap.assumed || x.entries[w.i].ref.Kind == events.KindTenant || stateSeq(snap.state) != w.item.Expected {
		return
	}
	o(w.item.Subject, w.item.Expected, snap.state)
}

func withOp(err error, op string) error {
	if e, ok := asError(err); ok && e.Op == "" {
		e.Op = op
	}
	return err
}

// dryRun decides the command as attempt does, on fresh states under the same locks, and
// answers the events it would write and their effects instead of appending them. A command
// id used before is neither looked up nor remembered: the dry run answers what the command
// would do now.
func (x *execution) dryRun(ctx context.Context) (Result, error) {
	for _, e := range x.entries {
		e.write.Lock()
		defer e.write.Unlock()
	}
	b := x.cmd.Base()
	f := newFacts(ctx, x.s.cache, b.Tenant)
	for _, e := range x.entries {
		snap, err := x.s.cache.fresh(ctx, e)
		if err != nil {
			return Result{}, storeError(x.op, err)
		}
		f.pin(e.ref, snap.state)
	}
	now := x.s.opts.Now().UTC()
	ws, err := aggregates.Decide(f, x.cmd, now)
	if f.err != nil {
		return Result{}, storeError(x.op, f.err)
	}
	if err != nil {
		return Result{}, err
	}
	writes, seq, err := x.envelopes(ws, now)
	if err != nil {
		return Result{}, err
	}
	res := Result{DryRun: true, Seq: seq, Events: []string{}, Envelopes: []events.Envelope{}}
	for _, w := range writes {
		res.Envelopes = append(res.Envelopes, w.item.Events...)
	}
	if x.s.opts.Effects != nil && len(res.Envelopes) > 0 {
		// The effects are evaluated on a read model that has applied everything stored before
		// the dry run, not only the decision's aggregates: the records a caller just wrote
		// count (read-your-writes, as min_seq gives queries).
		last, err := x.s.store.LastSeq(ctx)
		if err != nil {
			return Result{}, storeError(x.op, err)
		}
		if res.Seq, res.Effects, err = x.s.opts.Effects(ctx, b.Tenant, max(res.Seq, last), res.Envelopes); err != nil {
			return Result{}, withOp(err, x.op)
		}
	}
	return res, nil
}
