package commands

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
)

// A NATS server that refuses a publish (the user's permissions do not allow the subject) tells
// the client asynchronously and drops the message: a request would wait for its time-out and a
// client retrying unavailable answers would retry for nothing. Violations watches a
// connection's asynchronous errors and ends the requests on a refused subject at once, with
// forbidden.

// Violations ends requests that the server refused to publish. Make one with WatchViolations
// before connecting (its Option goes among the connection's options).
type Violations struct {
	mu      sync.Mutex
	waiting map[string]map[*violationWait]struct{}
	next    nats.ErrHandler // the handler that was there before, if any
}

type violationWait struct {
	cancel context.CancelCauseFunc
}

// WatchViolations returns a watcher that passes every error on to next (nil: none).
func WatchViolations(next nats.ErrHandler) *Violations {
	return &Violations{waiting: map[string]map[*violationWait]struct{}{}, next: next}
}

// Option installs the watcher as the connection's error handler.
func (v *Violations) Option() nats.Option {
	return nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if subject, ok := publishViolation(err); ok {
			v.refused(subject, err)
		}
		if v.next != nil {
			v.next(nc, sub, err)
		}
	})
}

// publishViolation reads the subject of `Permissions Violation for Publish to "subject"`.
func publishViolation(err error) (string, bool) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return "", false
	}
	_, rest, ok := strings.Cut(err.Error(), `Publish to "`)
	if !ok {
		return "", false
	}
	subject, _, ok := strings.Cut(rest, `"`)
	return subject, ok
}

func (v *Violations) refused(subject string, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for w := range v.waiting[subject] {
		w.cancel(&aggregates.Error{Code: aggregates.CodeForbidden,
			Message: "the NATS server refused to publish on " + subject + ": the connection's user may not (its NATS permissions)", Err: err})
	}
}

// Request is nc.RequestWithContext that ends at once, with the refusal, when the server
// refuses the publish. v may be nil.
func (v *Violations) Request(ctx context.Context, nc *nats.Conn, subject string, body []byte) (*nats.Msg, error) {
	if v == nil {
		return nc.RequestWithContext(ctx, subject, body)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &violationWait{cancel: cancel}
	v.mu.Lock()
	if v.waiting[subject] == nil {
		v.waiting[subject] = map[*violationWait]struct{}{}
	}
	v.waiting[subject][w] = struct{}{}
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.waiting[subject], w)
		if len(v.waiting[subject]) == 0 {
			delete(v.waiting, subject)
		}
		v.mu.Unlock()
	}()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		var refused *aggregates.Error
		if cause := context.Cause(ctx); errors.As(cause, &refused) {
			return nil, refused
		}
	}
	return msg, err
}
