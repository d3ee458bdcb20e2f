package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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
