package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

func (a *app) watchCommand() *cobra.Command {
	var principal string
	var count int
	c := &cobra.Command{
		Use:   "watch TENANT",
		Short: "Follow the change feed: what each change does to each principal's access (Ctrl-C to stop)",
		Long: `Prints the change feed of a tenant (SPEC section 8) from now on: for each event that changes
what a principal may do, the grants granted and revoked and, per record type, the records it
gained and lost (--json: one message a line, as published on acl.changes.<tenant>.principal.<id>).
Each change arrives once, however many acld instances run. The feed is live only: to learn what
changed while not watching, ask diff from the last seq seen.`,
		Example: `  aclctl watch acme
  aclctl watch acme --principal bob --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			tenant := args[0]
			if !events.ValidToken(tenant) || (principal != "" && !events.ValidToken(principal)) {
				return &exitError{code: exitUsage, err: fmt.Errorf("tenant and --principal are ids (1 to 64 of A-Z a-z 0-9 _ -)")}
			}
			nc, err := a.conn()
			if err != nil {
				return err
			}
			subject := events.ChangesSubject(tenant, "*")
			if principal != "" {
				subject = events.ChangesSubject(tenant, principal)
			}
			msgs := make(chan *nats.Msg, 1024)
			sub, err := nc.ChanSubscribe(subject, msgs)
			if err != nil {
				return &exitError{code: exitUnavailable, err: err}
			}
			defer sub.Unsubscribe()
			if err := nc.Flush(); err != nil {
				return &exitError{code: exitUnavailable, err: err}
			}
			if err := nc.LastError(); err != nil {
				return &exitError{code: exitUnavailable, err: err}
			}
			ctx := cc.Context()
			for printed := 0; count == 0 || printed < count; printed++ {
				select {
				case <-ctx.Done():
					return nil
				case m := <-msgs:
					if err := a.printChange(m.Data); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&principal, "principal", "", "only this principal's changes")
	c.Flags().IntVar(&count, "count", 0, "stop after this many messages (0: never)")
	return c
}

func (a *app) printChange(data []byte) error {
	if a.json {
		_, err := fmt.Fprintf(a.stdout, "%s\n", data)
		return err
	}
	var c aggregates.Change
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("change message: %w", err)
	}
	var parts []string
	for _, g := range c.Granted {
		parts = append(parts, "+"+grantText(g))
	}
	for _, g := range c.Revoked {
		parts = append(parts, "-"+grantText(g))
	}
	for _, typ := range slices.Sorted(maps.Keys(c.Visible)) {
		v := c.Visible[typ]
		s := typ + ":"
		if v.GainedCount > 0 {
			s += fmt.Sprintf(" +%d %s", v.GainedCount, strings.Join(v.Gained, ","))
		}
		if v.LostCount > 0 {
			s += fmt.Sprintf(" -%d %s", v.LostCount, strings.Join(v.Lost, ","))
		}
		if v.Truncated {
			s += " (lists cut)"
		}
		parts = append(parts, s)
	}
	_, err := fmt.Fprintf(a.stdout, "%d  %s  %s  event %s  %s\n", c.Seq, c.Tenant, c.Principal, c.Event, strings.Join(parts, "; "))
	return err
}

func grantText(g aggregates.GrantUse) string {
	return g.Permission + "@" + g.Scope + " (" + g.Source + ")"
}
