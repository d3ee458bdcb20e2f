package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
)

func (a *app) cmdCommand() *cobra.Command {
	var actor, commandID string
	var dryRun bool
	c := &cobra.Command{
		Use:   "cmd <tenant> <Command> '<json body>'",
		Short: "Issue a command (AssignRole, SetAccessLevel, RegisterRecord, ...)",
		Long: `Sends a command to acl.commands.<tenant>.<Command> and prints the stream sequence it was
stored at (pass it to queries as --min-seq to read your own write).

The body is the command's fields (SPEC section 7); unknown fields are refused before sending.
command_id is a new UUIDv7 unless the body or --command-id gives one: a retry with the same id
is applied once. The actor is the body's "actor", else --actor, else "system" (the operator).
Unavailable answers are retried with the same command_id until --timeout.

--dry-run asks what the command would do (SPEC section 8): every guard runs and nothing is
written; it prints the events it would write and, per principal whose access would change,
the grants it would gain and lose and the records it would start and stop seeing.

Commands: ` + strings.Join(aggregates.CommandNames, ", "),
		Example: `  aclctl cmd acme CreateTenant '{"preset":"trackops","admin":{"principal":"ann","kind":"staff","email":"ann@acme.test"}}'
  aclctl cmd acme AssignRole '{"principal":"bob","role":"staff"}' --actor ann
  aclctl cmd acme SetAccessLevel '{"principal":"bob","level":"limited"}' --actor ann --json
  aclctl cmd acme RevokeRolePermission '{"role":"staff","permission":"invoice.view","scope":"all"}' --actor ann --dry-run`,
		Args: cobra.ExactArgs(3),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			cmd, err := parseCommand(args[1], args[2], actor, commandID)
			if err != nil {
				return err
			}
			cmd.Base().DryRun = cmd.Base().DryRun || dryRun
			return a.issue(cc.Context(), args[0], cmd)
		},
	}
	c.Flags().StringVar(&actor, "actor", "", `who issues the command (default "system" unless the body names one)`)
	c.Flags().StringVar(&commandID, "command-id", "", "command id to use (to retry a command whose answer was lost)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only say what the command would do; write nothing")
	return c
}

// parseCommand decodes a command body strictly and fills its actor and command id.
func parseCommand(name, body, actor, commandID string) (aggregates.Command, error) {
	cmd := aggregates.NewCommand(name)
	if cmd == nil {
		return nil, usagef("unknown command %q; one of %s", name, strings.Join(aggregates.CommandNames, ", "))
	}
	// The server's reading (exact names, no field twice): what aclctl accepts, acld accepts.
	if err := aggregates.DecodeStrict(name+" body", []byte(body), cmd); err != nil {
		return nil, usagef("%s", err.Message)
	}
	b := cmd.Base()
	switch {
	case b.Actor != "" && actor != "" && b.Actor != actor:
		return nil, usagef("the body's actor %q and --actor %q differ", b.Actor, actor)
	case b.Actor == "" && actor != "":
		b.Actor = actor
	case b.Actor == "":
		b.Actor = aggregates.SystemActor
	}
	switch {
	case b.CommandID != "" && commandID != "" && b.CommandID != commandID:
		return nil, usagef("the body's command_id and --command-id differ")
	case commandID != "":
		b.CommandID = commandID
	}
	return cmd, nil
}

// issue sends cmd and prints the result.
func (a *app) issue(ctx context.Context, tenant string, cmd aggregates.Command) error {
	client, err := a.client()
	if err != nil {
		return err
	}
	res, err := client.Do(ctx, tenant, cmd)
	if err != nil {
		return a.clientError(err)
	}
	if res.DryRun {
		return a.printDryRun(cmd, res)
	}
	if a.json {
		return a.printJSON(map[string]any{"ok": true, "seq": res.Seq, "events": nonNil(res.Events),
			"command_id": cmd.Base().CommandID})
	}
	fmt.Fprintf(a.stdout, "ok  %s  seq %d  command_id %s  events %s\n", cmd.Name(), res.Seq,
		cmd.Base().CommandID, strings.Join(res.Events, ","))
	return nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
