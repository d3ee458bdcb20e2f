package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// BatchOutcome is one command's answer in a batch: Err is an *aggregates.Error when it was
// refused.
type BatchOutcome struct {
	Result Result
	Err    error
}

// batchWait bounds one batch request: the service's own bound and the way back.
const batchWait = batchTimeout + 5*time.Second

// Batch sends up to MaxBatch commands of one tenant in one request (the bulk path, see
// batch.go) and returns one outcome per command carried out, in order: fewer than sent when the
// batch stopped at a refused command, which is then the last outcome. Every body must carry its
// command_id, so that a retry is safe: unavailable answers, no responders and lost answers are
// retried, the whole batch with the same ids, until ctx ends. A batch refused as a whole is an
// *aggregates.Error.
func (c *Client) Batch(ctx context.Context, tenant string, cmds []BatchCommand) ([]BatchOutcome, error) {
	return c.batch(ctx, tenant, BatchRequest{Commands: cmds})
}

// BatchLoad is Batch for a batch of a bulk load (BatchRequest.Load): acld's read side may fall
// behind while such batches come, and catches up after. aclctl import sends its batches so.
func (c *Client) BatchLoad(ctx context.Context, tenant string, cmds []BatchCommand) ([]BatchOutcome, error) {
	return c.batch(ctx, tenant, BatchRequest{Commands: cmds, Load: true})
}

// BatchLookup asks whether the server stored each command (BatchRequest.Lookup,
// Service.Lookup), writing nothing: one outcome per command, the answer a retry would get, or
// an error: not_found (its message begins with ErrNotStored) when the server does not remember
// it, conflict when it remembers its id with another body. An acld from before lookups refuses
// the batch whole (invalid_argument, "unknown field").
func (c *Client) BatchLookup(ctx context.Context, tenant string, cmds []BatchCommand) ([]BatchOutcome, error) {
	return c.batch(ctx, tenant, BatchRequest{Commands: cmds, Lookup: true})
}

func (c *Client) batch(ctx context.Context, tenant string, req BatchRequest) ([]BatchOutcome, error) {
	cmds := req.Commands
	if !events.ValidToken(tenant) {
		return nil, &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: BatchName,
			Message: fmt.Sprintf("tenant %.70q must be 1 to 64 of A-Z a-z 0-9 _ -", tenant)}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("commands: batch: encode: %w", err)
	}
	var out []BatchOutcome
	err = retrying(ctx, BatchName, "no answer before the deadline; send the batch again", func() error {
		msg, err := c.ask(ctx, BatchName, BatchSubject(tenant), body, batchWait)
		if err == nil {
			out, err = decodeBatch(msg.Data, cmds)
		}
		return err
	})
	return out, err
}

// decodeBatch reads a batch's answer, each result named after its command.
func decodeBatch(data []byte, cmds []BatchCommand) ([]BatchOutcome, error) {
	if out, ok := scanBatchOK(data, len(cmds)); ok {
		return out, nil
	}
	return decodeBatchJSON(data, cmds)
}

// decodeBatchJSON is decodeBatch by encoding/json, for any answer.
func decodeBatchJSON(data []byte, cmds []BatchCommand) ([]BatchOutcome, error) {
	var ans BatchAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, fmt.Errorf("commands: batch: malformed answer %.100q: %w", data, err)
	}
	if !ans.OK {
		if ans.Error == nil {
			return nil, fmt.Errorf("commands: batch: answer without ok or error: %.100q", data)
		}
		return nil, &aggregates.Error{Code: ans.Error.Code, Op: BatchName, Message: ans.Error.Message}
	}
	out := make([]BatchOutcome, len(ans.Results))
	for i, raw := range ans.Results {
		op := BatchName
		if i < len(cmds) {
			op = cmds[i].Command
		}
		out[i].Result, out[i].Err = decodeAnswer(op, raw)
	}
	return out, nil
}

// scanBatchOK reads a batch's answer whose results are all commands carried out, as the service
// writes it ({"ok":true,"results":[..]}, each result as scanOK reads it); ok is false for
// anything else, which decodeBatch then reads with encoding/json. n: the commands sent.
func scanBatchOK(data []byte, n int) ([]BatchOutcome, bool) {
	const head = `{"ok":true,"results":[`
	if !hasAt(data, 0, head) {
		return nil, false
	}
	out := make([]BatchOutcome, 0, n)
	i := len(head)
	for i < len(data) && data[i] != ']' {
		if len(out) > 0 {
			if data[i] != ',' {
				return nil, false
			}
			i++
		}
		r, end, ok := scanOK(data, i)
		if !ok {
			return nil, false
		}
		out = append(out, BatchOutcome{Result: r})
		i = end
	}
	if len(out) == 0 || i+2 != len(data) || !hasAt(data, i, "]}") {
		return nil, false // an answer without results is not one the service writes: left to decodeBatch
	}
	return out, true
}

// Pipeline sends the batches of one sender in order with the next one on its way before the
// answer to the one before (BatchRequest.Pipe; see batch_pipe.go): the service decides batch
// n+1 while batch n takes the store's last answers. Take the answers in the order sent.
type Pipeline struct {
	c    *Client
	name string
	load bool
	// seqs numbers the batches per tenant: the service keeps a pipe per tenant and name, each
	// starting at 1 (an import of several tenants' lines would otherwise send the second
	// tenant's first batch as, say, 5, which waits for a batch 1 that never comes).
	seqs map[string]uint64
}

// Pipeline starts a pipeline of batches; load marks them as a bulk load's (BatchLoad).
func (c *Client) Pipeline(load bool) *Pipeline {
	return &Pipeline{c: c, name: uuid.NewString(), load: load, seqs: map[string]uint64{}}
}

// PendingBatch is a batch sent by a Pipeline whose answer may not have come yet.
type PendingBatch struct {
	tenant string
	cmds   []BatchCommand
	done   chan struct{}
	out    []BatchOutcome
	err    error
}

// Send sends a batch and returns at once. A batch that got no answer (unavailable) is not sent
// again here: the answers after it may then be of commands decided out of order (refused for
// what a batch not carried out would have made), so the caller sends it and the ones after it
// again, alone and in order (Batch), as Import does.
func (p *Pipeline) Send(ctx context.Context, tenant string, cmds []BatchCommand) *PendingBatch {
	p.seqs[tenant]++
	pb := &PendingBatch{tenant: tenant, cmds: cmds, done: make(chan struct{})}
	req := BatchRequest{Commands: cmds, Load: p.load, Pipe: p.name, Seq: p.seqs[tenant]}
	go func() {
		defer close(pb.done)
		body, err := json.Marshal(req)
		if err != nil {
			pb.err = fmt.Errorf("commands: batch: encode: %w", err)
			return
		}
		msg, err := p.c.ask(ctx, BatchName, BatchSubject(tenant), body, batchWait)
		if err == nil {
			pb.out, err = decodeBatch(msg.Data, cmds)
		}
		if retryable(err) {
			err = &aggregates.Error{Code: aggregates.CodeUnavailable, Op: BatchName, Message: "no answer: send the batch again", Err: err}
		}
		pb.err = err
	}()
	return pb
}

// Wait returns the batch's answer as Batch would, except that a batch without an answer is
// not sent again (unavailable: see Send).
func (pb *PendingBatch) Wait() ([]BatchOutcome, error) {
	<-pb.done
	return pb.out, pb.err
}
