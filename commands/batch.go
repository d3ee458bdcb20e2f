package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The bulk path: a request on acl.commands.<tenant>.Batch carries up to MaxBatch commands of one
// tenant, carried out in order as if each had been sent alone and answered before the next was
// sent: the same decoding, identity checks, guards, idempotency by command id and events. What
// it saves is the round trip per command. Commands are decided one after another on cached
// states and their appends sent without waiting for each answer (events.Store.AppendAsync);
// a command waits only for the answers of earlier writes to the aggregates it reads or writes,
// so every decision reads stored state and every append states the sequence it decided on.
// Commands that write two aggregates at once (SetAccessLevel and RemovePrincipal with the
// tenant's seats, CreateTenant) are gathered into one atomic batch while they come one after
// another: an atomic batch costs a temporary store and its fsyncs on a single server (some
// 40 ms under load), so one per command would bound a load at a few hundred of them a second.
// Anything the store refuses (a lost race, a duplicate of an earlier run, no answer) is carried
// out again by Execute, alone, which sorts it out as it would for a single command.
//
// A batch stops at the first command refused by its guards or its caller's rights: the answer
// lists the results of the commands up to and including that one. Resuming after an interruption
// is sending the commands again from the first one without an answer: those already stored
// answer what they answered the first time (SPEC section 6, idempotency).

// BatchName is the last token of the batch subject: acl.commands.<tenant>.Batch.
const BatchName = "Batch"

// MaxBatch bounds the commands of one batch request. It was 1000 until round 10: each request
// costs the service a wait for its last appends' answers and for the next request (some 27 ms
// of the ~122 ms a batch of 1000 took, read side held, load 13), and an import of the compare
// shape in batches of up to 3000 (2,500 fit NATS's payload limit) was acknowledged in 20-46 s
// against 36-87 s, interleaved (README, Round 10: import).
const MaxBatch = 3000

// MaxOldBatch is the bound of an acld from before round 10, which refuses a longer batch whole.
const MaxOldBatch = 1000

// maxAtomic bounds the messages of one atomic batch (JetStream's limit).
const maxAtomic = 1000

// batchWindow bounds the appends in flight of one batch: below JetStream's 4000 unanswered
// asynchronous publishes per connection, leaving room for the other commands of the instance.
const batchWindow = 2000

// batchTimeout bounds the work on one batch request.
const batchTimeout = 60 * time.Second

// BatchCommand is one command of a batch: its name and its body, as it would be sent alone.
type BatchCommand struct {
	Command string          `json:"command"`
	Body    json.RawMessage `json:"body"`
}

// BatchRequest is the body of a batch request.
type BatchRequest struct {
	Commands []BatchCommand `json:"commands"`
	// Load marks the batch as part of a bulk load (aclctl import): while such batches come,
	// acld's read side may hold its followers, up to --bulk-lag messages behind, and catch up
	// after (events.BulkLoad). Only a load asks for it: a service that sends its everyday
	// writes in batches must not leave the read model behind for as long as it keeps sending.
	Load bool `json:"load,omitempty"`
	// Pipe names a sender's pipeline of batches to one tenant, and Seq (1, 2, ...) this batch's
	// place in it: the sender may send the next batch before the answer to this one, and the
	// service carries them out in Seq's order, each starting while the one before waits for
	// the store's last answers (see batch_pipe.go). Without Pipe, batches are independent.
	Pipe string `json:"pipe,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`
	// Lookup asks, of each command, only whether this server stored it (Service.Lookup):
	// nothing is decided or written, and every command is answered (a batch of lookups does
	// not stop at a not_found).
	Lookup bool `json:"lookup,omitempty"`
}

// BatchAnswer answers a batch request: {"ok":true,"results":[..]}, one result per command
// carried out, in order, each exactly the answer the command would have had alone; the last one
// is an error when the batch stopped there. A request refused as a whole (its body, its
// caller) answers {"ok":false,"error":{..}}.
type BatchAnswer struct {
	OK      bool              `json:"ok"`
	Results []json.RawMessage `json:"results,omitempty"`
	Error   *WireError        `json:"error,omitempty"`
}

// outcome is one command's result while the batch runs.
type outcome struct {
	res Result
	err error
}

// BatchSubject is the subject of a tenant's batch requests.
func BatchSubject(tenant string) string { return Subject(tenant, BatchName) }

// isBatch reports whether subject is a batch request's, and its tenant.
func isBatch(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	tenant, name, ok2 := strings.Cut(rest, ".")
	return tenant, ok && ok2 && name == BatchName
}

// handleBatch answers a batch request.
func (s *Service) handleBatch(ctx context.Context, m *nats.Msg, tenant string) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	ans := s.batchAnswer(ctx, m, tenant)
	b := encodeBatchAnswer(ans)
	if m.Reply != "" {
		if err := m.Respond(b); err != nil {
			s.opts.Logger.Warn("batch answer lost", "subject", m.Subject, "err", err)
		}
	}
}

// encodeBatchAnswer is json.Marshal(a). An accepted batch's results are each an answer
// json.Marshal made (encodeResult, encodeError): compact, so joining them gives what Marshal would,
// without Marshal scanning and copying each of them again.
func encodeBatchAnswer(a BatchAnswer) []byte {
	if !a.OK || a.Error != nil || len(a.Results) == 0 {
		b, _ := json.Marshal(a) // plain types: cannot fail
		return b
	}
	n := len(`{"ok":true,"results":[]}`) + len(a.Results)
	for _, r := range a.Results {
		n += len(r)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"ok":true,"results":[`...)
	for i, r := range a.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, "]}"...)
}

// batchAnswer carries out a batch request and answers it. A batch of a load (BatchRequest.Load)
// tells the bulk load when it starts and ends, with the highest sequence its commands stored
// or answered.
func (s *Service) batchAnswer(ctx context.Context, m *nats.Msg, tenant string) BatchAnswer {
	refuse := func(err error) BatchAnswer {
		we := wireError(err)
		return BatchAnswer{Error: &we}
	}
	var caller *aggregates.Caller
	if s.opts.Identify != nil {
		c, err := s.opts.Identify(m.Header)
		if err != nil {
			return refuse(err)
		}
		caller = c
	}
	if !events.ValidToken(tenant) {
		return refuse(invalid("tenant %q in the subject must be 1 to 64 of A-Z a-z 0-9 _ -", tenant))
	}
	var req BatchRequest
	if err := aggregates.DecodeStrict("body", m.Data, &req); err != nil {
		err.Op = BatchName
		return refuse(err)
	}
	if len(req.Commands) > MaxBatch {
		return refuse(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: BatchName,
			Message: fmt.Sprintf("a batch carries at most %d commands", MaxBatch)})
	}
	if req.Pipe != "" && (req.Seq == 0 || len(req.Pipe) > 64) {
		return refuse(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: BatchName,
			Message: "a batch of a pipe needs its seq, from 1, and a pipe name of at most 64 bytes"})
	}
	if req.Lookup {
		if req.Load || req.Pipe != "" {
			return refuse(&aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: BatchName,
				Message: "a batch of lookups writes nothing: it takes neither load nor pipe"})
		}
		return s.lookupBatch(ctx, caller, tenant, req.Commands)
	}
	var last uint64
	if req.Load {
		if err := caller.MayHoldReadSide(); err != nil {
			err.Op = BatchName
			return refuse(err)
		}
		s.opts.Bulk.Begin()
		defer func() { s.opts.Bulk.End(last) }() // also on a panic: a load that ended holds nothing
	}
	r := &batchRun{s: s, ctx: ctx, tenant: tenant, flights: map[string]*flight{},
		results: make([]outcome, 0, len(req.Commands)), done: make(chan struct{})}
	defer close(r.done)
	var p *pipe
	if req.Pipe != "" {
		var err error
		if p, err = s.pipes.get(ctx, tenant, req.Pipe, req.Seq); err != nil {
			return refuse(err)
		}
		earlier, err := p.enter(ctx, req.Seq)
		if err != nil {
			return refuse(err)
		}
		r.earlier = earlier
		if pipeEntered != nil {
			pipeEntered(req.Seq, r)
		}
	}
	stopped := false
	for _, bc := range req.Commands {
		i := len(r.results)
		r.results = append(r.results, outcome{})
		cmd, err := s.decodeInBatch(caller, tenant, bc)
		if err == nil {
			err = r.run(i, cmd)
		}
		if err != nil {
			r.results[i] = outcome{err: err}
			stopped = true
			break
		}
	}
	r.commit()
	if p != nil {
		// Every append of the batch is sent: the next batch of the pipe may decide while
		// this one takes the store's answers.
		r.frozen = true
		// Decided: nothing of r reads the earlier batches now. Kept, each batch held the one
		// before it, that one its own, and so on, so a pipe's every batch (its flights, their
		// envelopes, messages and states) stayed on the heap until the pipe's last answer: an
		// import of the compare shape grew to 1.3 GB of heap, and GC marked all of it (README,
		// Round 16: import).
		r.earlier = nil
		p.handOff(req.Seq, r, stopped)
	}
	r.finish()
	if p != nil {
		p.finished(req.Seq, r, slices.ContainsFunc(r.results, func(o outcome) bool { return o.err != nil }))
	}
	ans := BatchAnswer{OK: true, Results: make([]json.RawMessage, len(r.results))}
	for i, o := range r.results {
		last = max(last, o.res.Seq)
		name := "unknown" // a command refused for its name is counted under unknown, as alone
		if knownCommand(req.Commands[i].Command) {
			name = req.Commands[i].Command
		}
		code := "ok"
		if o.err != nil {
			code = string(aggregates.ErrorCode(o.err))
			if code == string(aggregates.CodeInternal) {
				s.opts.Logger.Error("command failed", "subject", m.Subject, "index", i, "err", o.err)
			}
			ans.Results[i] = encodeError(o.err)
		} else {
			ans.Results[i] = encodeResult(o.res)
		}
		s.metrics.total.WithLabelValues(metricName(name), code).Inc()
	}
	return ans
}

// decodeInBatch is decode for one command of a batch: the caller's rights on the command, its
// body, then its actor.
func (s *Service) decodeInBatch(caller *aggregates.Caller, tenant string, bc BatchCommand) (aggregates.Command, error) {
	if !knownCommand(bc.Command) {
		return nil, invalid("unknown command %q; the commands are %s", bc.Command, strings.Join(aggregates.CommandNames, ", "))
	}
	return s.decodeAs(caller, tenant, bc.Command, bc.Body)
}

// pipeEntered, when set (tests), is called with each batch of a pipe once it has its turn.
var pipeEntered func(seq uint64, r *batchRun)

// batchRun is one batch being carried out.
type batchRun struct {
	s       *Service
	ctx     context.Context
	tenant  string
	results []outcome
	flights map[string]*flight // subject → its newest append not yet answered
	queue   []*flight          // appends not yet answered, in the order sent
	group   *group             // two-aggregate commands gathered for one atomic batch
	// earlier are the batches of the same pipe that decided before this one and were still
	// taking answers when it started; frozen marks a batch that handed off to the next one
	// (its flights are read by it, and no longer changed); done is closed when every answer
	// of this batch came.
	earlier []*batchRun
	frozen  bool
	done    chan struct{}
}

// flight is a command whose single append was sent and not yet answered.
type flight struct {
	i     int // index of the command (and its result)
	cmd   aggregates.Command
	entry *entry
	snap  *snapshot // the state it was decided on
	envs  []events.Envelope
	p     *events.Pending
	done  bool
	ready chan struct{} // closed when answered: its aggregate's new state is in the cache
}

// group is a run of commands that write two aggregates, gathered into one atomic batch.
type group struct {
	items []events.BatchItem
	owner []int // the command of each item
	cmds  []groupCmd
	subj  map[string]*groupState
}

type groupCmd struct {
	i   int
	cmd aggregates.Command
}

// groupState is an aggregate the group writes: the state it was read at, and that state with
// the group's events applied so far (owned by the group; sequences not known until the commit).
type groupState struct {
	entry *entry
	base  *snapshot
	state any
	items []int // the group's items on this aggregate, in order
}

// run decides one command and sends its appends.
func (r *batchRun) run(i int, cmd aggregates.Command) error {
	s := r.s
	op := cmd.Name()
	if err := aggregates.Validate(cmd); err != nil {
		return withOp(err, op)
	}
	if cmd.Base().DryRun {
		// A dry run answers on the read model as it stands, which a batch's commands in flight
		// are not in yet: it would answer about another moment than its place in the batch.
		return &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: op,
			Message: "dry_run is not taken inside a batch; send the command alone"}
	}
	switch cmd.(type) {
	case *aggregates.DefineRole, *aggregates.DeleteRole:
		// They ask who holds a role by reading every principal from the store
		// (facts.RoleHolder), not the cache: everything the batch sent must be stored first.
		r.finish()
		for _, e := range r.earlier {
			select {
			case <-e.done:
			case <-r.ctx.Done():
				return storeError(op, r.ctx.Err())
			}
		}
	}
	x := &execution{s: s, cmd: cmd, op: op, hash: Hash(cmd), speculate: true}
	refs := targets(cmd)
	if r.group != nil && len(r.group.items)+len(refs) > maxAtomic {
		r.commit()
	}
	for _, ref := range refs {
		e, err := s.cache.entry(r.tenant, ref)
		if err != nil {
			return internal(op, err)
		}
		x.entries = append(x.entries, e)
	}
	// A command that writes two aggregates, or reads or writes one that the open atomic batch
	// writes, joins that batch and decides on the state the batch leaves; any other decides on
	// stored state: every aggregate it reads has its appends answered first.
	join := len(refs) > 1
	for _, e := range x.entries {
		if r.inGroup(e.subject) != nil {
			join = true
		} else {
			r.settle(e.subject)
		}
	}
	f := newFacts(r.ctx, s.cache, r.tenant)
	f.before = func(ref events.AggregateRef) (any, bool) {
		var buf [events.MaxSubject]byte
		key, err := events.AppendSubject(buf[:0], r.tenant, ref)
		if err != nil {
			return nil, false
		}
		// A view of buf, not a copy: inGroup and settle only look it up (a decision reads a
		// few aggregates, each of which made a string here).
		subject := unsafe.String(unsafe.SliceData(key), len(key))
		if gs := r.inGroup(subject); gs != nil {
			join = true
			return gs.state, true
		}
		r.settle(subject)
		return nil, false
	}
	snaps := make([]*snapshot, len(x.entries))
	for k, e := range x.entries {
		if gs := r.inGroup(e.subject); gs != nil {
			snaps[k] = &snapshot{state: gs.state, gen: gs.base.gen, pos: gs.base.pos, pending: true}
		} else {
			var err error
			if snaps[k], err = x.read(r.ctx, e); err != nil {
				return storeError(op, err)
			}
		}
		f.pin(e.ref, snaps[k].state)
	}
	if res, ok, missing, err := x.previous(r.ctx, snaps); ok || err != nil {
		if ok && (len(missing) > 0 && err == nil || slices.ContainsFunc(snaps, func(s *snapshot) bool { return s.pending })) {
			// Not an answer yet, so the command is carried out alone, after the open atomic
			// batch is stored: either an aggregate that does not remember the command while
			// another does may be behind the stream (Execute reads it again, see attempt), or
			// the batch carries the command twice and the open atomic batch holds the first.
			// Its states remember the command at sequence 0 (the tenant's index not at all),
			// and it may yet be refused: answered from them, the second was {seq 0, part of
			// the events}, even when nothing was stored.
			r.commit()
			return r.aloneInRun(i, cmd)
		}
		if err != nil {
			return err
		}
		if x.speculated(snaps) { // an aggregate assumed empty may remember it too (see attempt)
			r.commit()
			return r.aloneInRun(i, cmd)
		}
		r.results[i] = outcome{res: res}
		return nil
	}
	now := s.opts.Now().UTC()
	ws, err := aggregates.Decide(f, cmd, now)
	if f.err != nil {
		return storeError(op, f.err)
	}
	if err != nil || !writesEvents(ws) && !join {
		// Answered without an append (see execution.current): on a state behind the stream,
		// the command is carried out alone, which reads it again. (A command that joins the
		// open atomic batch and changes nothing is decided again alone if the batch is
		// refused; current does not check the states the batch left.)
		if ok, cerr := x.current(r.ctx, snaps); cerr != nil {
			return storeError(op, cerr)
		} else if !ok {
			r.commit()
			return r.aloneInRun(i, cmd)
		}
	}
	if err != nil {
		return err
	}
	writes, seq, err := x.envelopes(ws, now)
	if err != nil {
		return err
	}
	switch {
	case join:
		r.gather(i, x, writes, snaps) // no write: its answer's seq is the batch's
	case len(writes) == 0:
		r.results[i] = outcome{res: Result{Seq: seq}}
	default: // one aggregate: commands writing two join
		r.send(i, x, writes[0], snaps[writes[0].i])
	}
	return nil
}

// settle waits for the answer of the batch's append in flight to subject, if any, and for
// those of the earlier batches of its pipe (taken by their own goroutines).
func (r *batchRun) settle(subject string) {
	for _, e := range r.earlier {
		if fl := e.flights[subject]; fl != nil {
			select {
			case <-fl.ready:
			case <-r.ctx.Done(): // the decision reads the cache; its append's expected sequence guards it
			}
		}
	}
	if fl := r.flights[subject]; fl != nil && !fl.done {
		r.answer(fl) // the appends sent before it stay in flight
	}
}

func (r *batchRun) inGroup(subject string) *groupState {
	if r.group == nil {
		return nil
	}
	return r.group.subj[subject]
}

// send appends one command's single message without waiting for the answer.
func (r *batchRun) send(i int, x *execution, w pendingWrite, snap *snapshot) {
	for len(r.queue) >= batchWindow {
		r.pop()
	}
	w.item.MsgID = msgID(x.cmd, x.entries[w.i].ref, 1)
	r.s.noteOwn(w.item.MsgID)
	p, err := r.s.store.AppendAsync(w.item.Subject, w.item.Expected, w.item.MsgID, w.item.Events)
	e := x.entries[w.i]
	fl := &flight{i: i, cmd: x.cmd, entry: e, snap: snap, envs: w.item.Events, p: p, ready: make(chan struct{})}
	if err != nil {
		// Not sent (or not known to be): the command is carried out alone.
		fl.done = true
		e.stale()
		r.alone(i, x.cmd)
		return
	}
	r.flights[e.subject] = fl
	r.queue = append(r.queue, fl)
}

// pop takes the oldest append off the queue, waiting for its answer if it was not taken yet.
func (r *batchRun) pop() {
	head := r.queue[0]
	r.queue[0] = nil
	r.queue = r.queue[1:]
	if !head.done {
		r.answer(head)
	}
}

// answer takes the store's answer to one append: the command's result, and the new state of its
// aggregate in the cache. Anything but a plain success is carried out again alone.
func (r *batchRun) answer(fl *flight) {
	fl.done = true
	defer close(fl.ready)
	if !r.frozen && r.flights[fl.entry.subject] == fl {
		delete(r.flights, fl.entry.subject)
	}
	app, err := fl.p.Wait(r.ctx)
	if err != nil || app.Duplicate {
		fl.entry.stale()
		r.alone(fl.i, fl.cmd)
		return
	}
	x := &execution{s: r.s, entries: []*entry{fl.entry}}
	// The append's validation decoded the events' data: applied as it is, not decoded again.
	x.publish(0, fl.snap, fl.envs, fl.p.Data(), app.Seq)
	res := Result{Seq: app.Seq}
	for _, env := range fl.envs {
		res.Events = append(res.Events, env.ID)
	}
	r.results[fl.i] = outcome{res: res}
}

// gather adds a command's writes to the group.
func (r *batchRun) gather(i int, x *execution, writes []pendingWrite, snaps []*snapshot) {
	g := r.group
	if g == nil {
		g = &group{subj: map[string]*groupState{}}
		r.group = g
	}
	g.cmds = append(g.cmds, groupCmd{i: i, cmd: x.cmd})
	for _, w := range writes {
		e := x.entries[w.i]
		w.item.MsgID = msgID(x.cmd, e.ref, len(writes))
		gs := g.subj[e.subject]
		if gs == nil {
			gs = &groupState{entry: e, base: snaps[w.i], state: cloneState(snaps[w.i].state)}
			g.subj[e.subject] = gs
		} else {
			w.item.Follows = true
		}
		for _, env := range w.item.Events {
			_ = applyEnvelope(gs.state, env) // envelopes just made by Decide: they apply
		}
		gs.items = append(gs.items, len(g.items))
		r.s.noteOwn(w.item.MsgID)
		g.items = append(g.items, w.item)
		g.owner = append(g.owner, i)
	}
}

// commit stores the group as one atomic batch. Its items are stored one after another, so each
// item's sequence follows from the last one's. When the store refuses the batch, each of its
// commands is carried out again alone, in order.
func (r *batchRun) commit() {
	g := r.group
	if g == nil {
		return
	}
	r.group = nil
	if len(g.items) == 0 { // its members changed nothing: they are decided again, alone
		for _, c := range g.cmds {
			r.alone(c.i, c.cmd)
		}
		return
	}
	app, err := r.s.store.AppendAtomic(r.ctx, g.items)
	if err != nil || app.Duplicate || (len(g.items) > 1 && app.Count != len(g.items)) {
		for _, gs := range g.subj {
			gs.entry.stale()
		}
		for _, c := range g.cmds {
			r.alone(c.i, c.cmd)
		}
		return
	}
	first := app.Seq + 1 - uint64(len(g.items))
	for _, c := range g.cmds {
		// A member that wrote nothing decided on what the batch left: its seq is the batch's.
		r.results[c.i].res = Result{Seq: app.Seq}
	}
	for k, it := range g.items {
		res := &r.results[g.owner[k]].res
		if k == 0 || g.owner[k-1] != g.owner[k] {
			res.Seq = 0
		}
		res.Seq = max(res.Seq, first+uint64(k))
		for _, env := range it.Events {
			res.Events = append(res.Events, env.ID)
		}
	}
	for _, gs := range g.subj {
		st := cloneState(gs.base.state)
		n := 0
		for _, k := range gs.items {
			for _, env := range g.items[k].Events {
				env.Seq = first + uint64(k)
				if err := applyEnvelope(st, env); err != nil {
					gs.entry.stale()
					continue
				}
				n++
			}
		}
		gs.entry.absorbState(st)
		r.s.cache.publish(gs.entry, st, gs.base)
		if sn := r.s.cache.snaps.Load(); sn != nil {
			sn.added(gs.entry, st, n)
		}
	}
}

// aloneInRun carries out command i alone while the batch decides (run), and returns its error:
// a refusal stops the batch there, as one decided in the batch does.
func (r *batchRun) aloneInRun(i int, cmd aggregates.Command) error {
	r.alone(i, cmd)
	return r.results[i].err
}

// alone carries out command i by Execute, as if sent alone.
func (r *batchRun) alone(i int, cmd aggregates.Command) {
	r.s.metrics.alone.Inc()
	res, err := r.s.Execute(r.ctx, cmd)
	r.results[i] = outcome{res: res, err: err}
}

// finish stores what the batch still holds and takes every answer.
func (r *batchRun) finish() {
	r.commit()
	for len(r.queue) > 0 {
		r.pop()
	}
}
