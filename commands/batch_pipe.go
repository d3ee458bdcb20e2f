package commands

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// Pipelined batches (BatchRequest.Pipe): a sender that has batch n+1 on its way before the
// answer to batch n (aclctl import keeps two in flight) gets them carried out as one long batch.
// Batch n+1 starts deciding as soon as batch n has decided and sent all its appends, while
// batch n still waits for the store's last answers and goes back to its sender: the service
// waited for those answers, then for the answer to travel, the next request to come and be
// decoded (a fifth of an import's time with nothing else to do, round 10). The batches of a
// pipe take turns in the order of Seq, whichever worker picks them up: a batch waits for
// its predecessor to have decided (at most pipeWait), and a command waits for the answer of
// an earlier batch's append to an aggregate it reads or writes (settle), exactly as it waits
// for one of its own batch. So the commands are decided in the file's order, on stored state.
//
// What a pipe changes: after a batch stopped at a command refused while deciding, the later
// batches of the pipe are refused whole (nothing of them is carried out), as a sender waiting
// for each answer would not have sent them. A refusal found only when an append's answer comes
// back (another writer changed the aggregate, and the command carried out again alone is then
// refused) may come after later commands were stored; inside one batch that was already so.

// pipeGap bounds how long a batch waits for its predecessor in the pipe to come (not to
// decide: a batch deciding takes its time): then it is refused as unavailable, and the sender
// sends it again. A var for tests.
var pipeGap = 2 * time.Second

// PipeElsewhere starts the message of a pipelined batch refused because this instance did not
// get the pipe's first batch: the batches of a pipe must all reach one acld (one instance, or a
// sender that pins it); a sender then sends one batch at a time.
const PipeElsewhere = "the pipe's first batch did not reach this instance"

// pipeIdle is how long a pipe's state is kept after its last batch.
const pipeIdle = time.Minute

// pipes are the batch pipes of a service, by tenant and pipe name.
type pipes struct {
	mu    sync.Mutex
	m     map[string]*pipe
	added chan struct{} // closed and replaced when a pipe is made
}

// pipe is the order of one sender's batches.
type pipe struct {
	mu      sync.Mutex
	turn    chan struct{} // closed and replaced when decided or busy changes
	decided uint64        // the highest Seq that has decided (its tail may still be in flight)
	busy    bool          // a batch is deciding
	stopped uint64        // the Seq of a batch that stopped at a refusal: later ones are refused
	tails   []*batchRun   // batches that decided and still wait for answers, oldest first
	used    time.Time
}

// get returns the pipe of tenant and name. A pipe starts at Seq 1, whichever of its batches
// comes first; a sender that lost an answer sends the batches from there alone, and starts a
// new pipe (so a pipe that acld does not know after a restart waits for batches that will not
// come: its batches are refused after pipeWait, and sent again).
func (ps *pipes) get(ctx context.Context, tenant, name string, seq uint64) (*pipe, error) {
	timer := time.NewTimer(pipeGap)
	defer timer.Stop()
	for {
		p, added := ps.find(tenant, name, seq)
		if p != nil {
			return p, nil
		}
		// The first batch may be a moment behind, picked up by another worker.
		select {
		case <-added:
		case <-timer.C:
			return nil, &aggregates.Error{Code: aggregates.CodeUnavailable, Op: BatchName,
				Message: fmt.Sprintf("%s (batch %d came alone): send the batches one at a time", PipeElsewhere, seq)}
		case <-ctx.Done():
			return nil, &aggregates.Error{Code: aggregates.CodeUnavailable, Op: BatchName, Message: "no turn before the deadline", Err: ctx.Err()}
		}
	}
}

// find returns the pipe, made for batch 1; nil and a channel closed at the next pipe made when
// the pipe is not known and seq is not 1.
func (ps *pipes) find(tenant, name string, seq uint64) (*pipe, chan struct{}) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	if ps.m == nil {
		ps.m = map[string]*pipe{}
		ps.added = make(chan struct{})
	}
	for k, p := range ps.m { // a few pipes at most: one per import running
		p.mu.Lock()
		idle := !p.busy && len(p.tails) == 0 && now.Sub(p.used) > pipeIdle
		p.mu.Unlock()
		if idle {
			delete(ps.m, k)
		}
	}
	key := tenant + "\x00" + name
	p := ps.m[key]
	if p == nil {
		if seq != 1 {
			return nil, ps.added
		}
		p = &pipe{turn: make(chan struct{})}
		ps.m[key] = p
		close(ps.added)
		ps.added = make(chan struct{})
	}
	p.mu.Lock()
	p.used = now
	p.mu.Unlock()
	return p, nil
}

// changed wakes the batches waiting for their turn. Called with p.mu held.
func (p *pipe) changed() {
	close(p.turn)
	p.turn = make(chan struct{})
}

// enter waits for batch seq's turn to decide and returns the batches it must wait for (the
// earlier batches still waiting for answers). A batch sent again (seq already decided) takes
// the next turn. It waits as long as the batches before it are deciding, and at most pipeGap
// for one that has not come.
func (p *pipe) enter(ctx context.Context, seq uint64) ([]*batchRun, error) {
	for {
		p.mu.Lock()
		if p.stopped != 0 && seq > p.stopped {
			p.mu.Unlock()
			return nil, &aggregates.Error{Code: aggregates.CodeConflict, Op: BatchName,
				Message: fmt.Sprintf("batch %d of this pipe stopped at a refused command: batch %d was not carried out", p.stopped, seq)}
		}
		if !p.busy && seq <= p.decided+1 {
			p.busy = true
			p.used = time.Now()
			tails := append([]*batchRun(nil), p.tails...)
			p.mu.Unlock()
			return tails, nil
		}
		turn, busy := p.turn, p.busy
		p.mu.Unlock()
		var gap <-chan time.Time // the one before is deciding: the gap counts from its end
		if !busy {
			t := time.NewTimer(pipeGap)
			defer t.Stop()
			gap = t.C
		}
		select {
		case <-turn:
		case <-gap:
			return nil, &aggregates.Error{Code: aggregates.CodeUnavailable, Op: BatchName,
				Message: fmt.Sprintf("batch %d of this pipe came, batch %d did not: send them again", seq, seq-1)}
		case <-ctx.Done():
			return nil, &aggregates.Error{Code: aggregates.CodeUnavailable, Op: BatchName, Message: "no turn before the deadline", Err: ctx.Err()}
		}
	}
}

// handOff lets the next batch decide: r's appends are all sent (its tail waits for their
// answers); stopped reports that r stopped at a refused command.
func (p *pipe) handOff(seq uint64, r *batchRun, stopped bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy = false
	p.decided = max(p.decided, seq)
	if stopped {
		p.stop(seq)
	}
	p.tails = append(p.tails, r)
	p.changed()
}

// stop refuses the batches after seq. Called with p.mu held.
func (p *pipe) stop(seq uint64) {
	if p.stopped == 0 || seq < p.stopped {
		p.stopped = seq
	}
}

// finished takes r off the tails once every answer came; refused reports a command refused
// after deciding (carried out again alone), which stops the pipe there too.
func (p *pipe) finished(seq uint64, r *batchRun, refused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.tails, r); i >= 0 {
		p.tails = slices.Delete(p.tails, i, i+1) // clears the slot it frees: nothing keeps r
	}
	if refused {
		p.stop(seq)
	}
	p.used = time.Now()
	p.changed()
}

// abandon lets the next batch decide after a batch that could not (refused whole).
func (p *pipe) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy = false
	p.changed()
}
