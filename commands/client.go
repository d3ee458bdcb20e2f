package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Client issues commands over NATS, and queries over NATS or HTTP, for services written in Go:
// one object for a service's calls (client_query.go, client_queries.go).
type Client struct {
	nc *nats.Conn
	// violations ends requests the server refuses to publish (Dial sets it).
	violations *Violations
	// Wait bounds one command or query, retries included, when the context has no deadline
	// (default 30s).
	Wait time.Duration
	// AttemptWait bounds one request of a query before it is sent again (default 11 s: acld
	// answers a query within 10 s).
	AttemptWait time.Duration
	// http, when set, is where queries go instead of NATS (UseHTTP).
	http *httpQueries
}

// NewClient returns a client on nc. A request that nc's user may not publish waits for its
// time-out; Dial's client, or NewClientWatching, ends it at once.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc, Wait: 30 * time.Second} }

// NewClientWatching is NewClient on a connection made with v.Option(): a request the server
// refuses to publish ends at once with forbidden.
func NewClientWatching(nc *nats.Conn, v *Violations) *Client {
	c := NewClient(nc)
	c.violations = v
	return c
}

// Dial connects to acld's NATS with opts (the service's credentials: nats.UserInfo,
// nats.UserCredentials, nats.Nkey or nats.NkeyOptionFromSeed; nats.Secure or nats.RootCAs for
// TLS) and returns a client that surfaces a permissions violation at once. Close the
// connection (Conn) when done.
func Dial(url string, opts ...nats.Option) (*Client, error) {
	v := WatchViolations(nil)
	nc, err := nats.Connect(url, append(opts, v.Option())...)
	if err != nil {
		return nil, fmt.Errorf("commands: connect to %s: %w", url, err)
	}
	return NewClientWatching(nc, v), nil
}

// Conn is the client's connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// attemptWait bounds one request: the service answers within 10 s.
const attemptWait = 11 * time.Second

// Do sends cmd to the tenant and waits for the answer. An empty command_id is filled with a new
// UUIDv7 (in cmd, so a caller can see it and retry with it). An error answer is an
// *aggregates.Error (errors.As); unavailable answers, no responders and lost answers are
// retried with the same command_id, with backoff, until ctx ends, so that the command is
// applied once. A failure to reach the service by then is unavailable.
func (c *Client) Do(ctx context.Context, tenant string, cmd aggregates.Command) (Result, error) {
	op := cmd.Name()
	if !events.ValidToken(tenant) {
		return Result{}, &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: op,
			Message: fmt.Sprintf("tenant %.70q must be 1 to 64 of A-Z a-z 0-9 _ -", tenant)}
	}
	if c.nc == nil {
		return Result{}, &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: op,
			Message: "the client has no NATS connection (NewHTTPClient): commands go over NATS"}
	}
	b := cmd.Base()
	if b.CommandID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return Result{}, fmt.Errorf("commands: %s: new command id: %w", op, err)
		}
		b.CommandID = id.String()
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return Result{}, fmt.Errorf("commands: %s: encode: %w", op, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Wait)
		defer cancel()
	}
	subject := Subject(tenant, op)
	var res Result
	err = retrying(ctx, op, "no answer before the deadline; retry later with command_id "+b.CommandID, func() error {
		msg, err := c.ask(ctx, op, subject, body, attemptWait)
		if err == nil {
			res, err = decodeAnswer(op, msg.Data)
		}
		return err
	})
	return res, err
}

// retrying runs attempt until it ends in something other than a retryable error, waiting with
// backoff in between, until ctx ends: then it is unavailable with message giveUp.
func retrying(ctx context.Context, op, giveUp string, attempt func() error) error {
	backoff := 20 * time.Millisecond
	for {
		err := attempt()
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return &aggregates.Error{Code: aggregates.CodeUnavailable, Op: op, Message: giveUp, Err: errors.Join(err, ctx.Err())}
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// ask is one request, waiting at most wait; a publish the server refuses is the
// *aggregates.Error that Violations makes of it.
func (c *Client) ask(ctx context.Context, op, subject string, body []byte, wait time.Duration) (*nats.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, err := c.violations.Request(actx, c.nc, subject, body)
	if err != nil {
		var refused *aggregates.Error
		if errors.As(err, &refused) {
			refused.Op = op
			return nil, refused
		}
		return nil, fmt.Errorf("commands: %s: request: %w", op, err)
	}
	return msg, nil
}

// retryable: the command may not have been applied, or was and its answer was lost; asking
// again with the same command_id is safe either way.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := asError(err); ok {
		return e.Code == aggregates.CodeUnavailable
	}
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}
