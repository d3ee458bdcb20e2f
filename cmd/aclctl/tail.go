package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

// store opens the event store, refusing to create the stream: the CLI reads what acld wrote.
func (a *app) store(ctx context.Context) (*events.Store, error) {
	nc, err := a.conn()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, &exitError{code: exitUnavailable, err: err}
	}
	if _, err := js.Stream(ctx, events.DefaultStream); err != nil {
		return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("stream %s on %s: %w (is acld running?)", events.DefaultStream, a.natsURL, err)}
	}
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		return nil, &exitError{code: exitUnavailable, err: err}
	}
	return st, nil
}

// errEnough stops a follow that printed what was asked.
var errEnough = errors.New("enough")

func (a *app) tailCommand() *cobra.Command {
	var (
		tenant, from string
		count        int
	)
	c := &cobra.Command{
		Use:   "tail",
		Short: "Follow the event stream live (Ctrl-C to stop)",
		Long: `Prints events as they are stored, one line each (--json: one envelope with its seq per line).
By default from now on; --from starts at a sequence or at the first event after a time.`,
		Example: `  aclctl tail --tenant acme
  aclctl tail --from 1 --count 20 --json`,
		Args: cobra.NoArgs,
		RunE: func(cc *cobra.Command, _ []string) error {
			defer a.close()
			ctx := cc.Context()
			st, err := a.store(ctx)
			if err != nil {
				return err
			}
			start, err := tailStart(ctx, st, from)
			if err != nil {
				return err
			}
			prefix := events.Prefix + "."
			if tenant != "" {
				prefix += tenant + "."
			}
			printed := 0
			err = st.Follow(ctx, start, func(msgs []events.Message) error {
				for _, m := range msgs {
					if !strings.HasPrefix(m.Subject, prefix) {
						continue
					}
					for _, e := range m.Events {
						if err := a.printEvent(e); err != nil {
							return err
						}
						if printed++; count > 0 && printed >= count {
							return errEnough
						}
					}
				}
				return nil
			})
			if errors.Is(err, errEnough) || ctx.Err() != nil {
				return nil
			}
			return &exitError{code: exitUnavailable, err: err}
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "only this tenant's events")
	c.Flags().StringVar(&from, "from", "", "start at this sequence, or after this RFC 3339 time (default: now)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many events (0: never)")
	return c
}

// tailStart is the first sequence to follow.
func tailStart(ctx context.Context, st *events.Store, from string) (uint64, error) {
	if from == "" {
		last, err := st.LastSeq(ctx)
		return last + 1, wrapUnavailable(err)
	}
	m, err := parseMoment("--from", from)
	if err != nil {
		return 0, err
	}
	if !m.IsTime() {
		return max(m.Seq, 1), nil
	}
	seq, err := st.SeqAtTime(ctx, m.Time)
	return seq + 1, wrapUnavailable(err)
}

func wrapUnavailable(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUnavailable, err: err}
}

func (a *app) printEvent(e events.Envelope) error {
	if a.json {
		e.CommandHash = ""
		return json.NewEncoder(a.stdout).Encode(replay.HistoryEvent{Envelope: e})
	}
	agg := e.Aggregate.Kind + ":" + e.Aggregate.ID
	if e.Aggregate.Type != "" {
		agg = e.Aggregate.Type + "/" + e.Aggregate.ID
	}
	via := ""
	if e.Via != "" {
		via = " via " + e.Via
	}
	_, err := fmt.Fprintf(a.stdout, "%d  %s  %s  %s  %s  by %s%s  %s\n", e.Seq, e.Time.UTC().Format(time.RFC3339),
		e.Tenant, e.Type, agg, e.Actor, via, e.Data)
	return err
}
