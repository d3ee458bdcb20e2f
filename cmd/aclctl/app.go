package main

import (
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

// client is the Go client on the connection; --timeout bounds each command or query, retries
// included.
func (a *app) client() (*commands.Client, error) {
	nc, err := a.conn()
	if err != nil {
		return nil, err
	}
	c := commands.NewClientWatching(nc, a.violations)
	c.Wait = a.timeout
	return c, nil
}

// clientError is the exit of a client's error: an answer's code, or acld out of reach.
func (a *app) clientError(err error) error {
	var e *aggregates.Error
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &exitError{code: exitUnavailable, err: fmt.Errorf("no acld answers on %s (is it running?): %w", a.natsURL, err)}
	case errors.Is(err, nats.ErrAuthorization):
		return &exitError{code: exitAnswer, err: fmt.Errorf("unauthenticated: %w", err)}
	case errors.As(err, &e):
		return codeError(e.Code, e.Message)
	}
	return &exitError{code: exitUnavailable, err: err}
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
