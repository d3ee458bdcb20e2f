package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

const defaultTimeout = 15 * time.Second

// app holds the global flags and the connection, opened on first use.
type app struct {
	stdout, stderr io.Writer

	natsURL, natsCreds, natsNkey, natsUser, natsPassword string
	json                                                 bool
	timeout                                              time.Duration

	nc         *nats.Conn
	violations *commands.Violations // ends a request the server refuses to publish at once
}

// conn connects to NATS once.
func (a *app) conn() (*nats.Conn, error) {
	if a.nc != nil {
		return a.nc, nil
	}
	a.violations = commands.WatchViolations(nil)
	opts := []nats.Option{nats.Name("aclctl"), nats.Timeout(5 * time.Second), a.violations.Option()}
	if a.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(a.natsCreds))
	}
	if a.natsNkey != "" {
		o, err := nats.NkeyOptionFromSeed(a.natsNkey)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--nats-nkey: %w", err)}
		}
		opts = append(opts, o)
	}
	password := a.natsPassword
	if password == "" {
		password = os.Getenv("ACLCTL_NATS_PASSWORD")
	}
	if a.natsUser != "" {
		opts = append(opts, nats.UserInfo(a.natsUser, password))
	}
	nc, err := nats.Connect(a.natsURL, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, &exitError{code: exitAnswer, err: fmt.Errorf("connect to %s: unauthenticated: the server refused these credentials (--nats-user/--nats-password, --nats-nkey, --nats-creds): %w", a.natsURL, err)}
	}
	if err != nil {
		return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("connect to %s: %w", a.natsURL, err)}
	}
	a.nc = nc
	return nc, nil
}

func (a *app) close() {
	if a.nc != nil {
		a.nc.Close()
		a.nc = nil
	}
}

// request sends body to subject and returns the answer's data, mapping transport failures to
// exitUnavailable.
func (a *app) request(ctx context.Context, subject string, body []byte) ([]byte, error) {
	nc, err := a.conn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	msg, err := a.violations.Request(ctx, nc, subject, body)
	var refused *aggregates.Error
	switch {
	case errors.As(err, &refused):
		return nil, &exitError{code: exitAnswer, err: refused}
	case errors.Is(err, nats.ErrAuthorization):
		return nil, &exitError{code: exitAnswer, err: fmt.Errorf("%s: unauthenticated: %w", subject, err)}
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("%s: no acld answers on %s (is it running?)", subject, a.natsURL)}
	case err != nil:
		return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("%s: %w", subject, err)}
	}
	return msg.Data, nil
}

// wireError is the error object of an answer (SPEC section 6).
type wireError struct {
	Code    aggregates.Code `json:"code"`
	Message string          `json:"message"`
}

// answerError returns the error an answer carries, nil when it carries none.
func answerError(data []byte) error {
	var a struct {
		Error *wireError `json:"error"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return &exitError{code: exitAnswer, err: fmt.Errorf("answer is not JSON: %v: %.200s", err, data)}
	}
	if a.Error == nil {
		return nil
	}
	return codeError(a.Error.Code, a.Error.Message)
}

// codeError is the exit of an error answer: retryable codes are "unavailable" to scripts.
func codeError(code aggregates.Code, message string) error {
	exit := exitAnswer
	if code == aggregates.CodeUnavailable || code == aggregates.CodeNotCaughtUp {
		exit = exitUnavailable
	}
	return &exitError{code: exit, err: fmt.Errorf("%s: %s", code, message)}
}

// printJSON writes v indented.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printRaw writes an answer as it came, indented.
func (a *app) printRaw(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	return a.printJSON(v)
}
