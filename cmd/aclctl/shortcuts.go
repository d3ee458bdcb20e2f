package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// queryShortcuts are the friendly forms of the read queries, with tables by default.
func (a *app) queryShortcuts() []*cobra.Command {
	return []*cobra.Command{a.checkCommand(), a.visibleCommand(), a.permissionsCommand(),
		a.principalsCommand(), a.recipientsCommand()}
}

func (a *app) checkCommand() *cobra.Command {
	var m momentFlags
	c := &cobra.Command{
		Use:   "check <tenant> <principal> <permission> [<type>/<id>]",
		Short: "May a principal do something (to a record)? Exit 0 allowed, 4 denied",
		Example: `  aclctl check acme bob invoice.view invoice/inv-1
  aclctl check acme bob session.login --as-of 2026-03-01T12:00:00Z`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			body := map[string]any{"principal": args[1], "permission": args[2]}
			if len(args) == 4 {
				rec, err := recordArg(args[3])
				if err != nil {
					return err
				}
				body["record"] = rec
			}
			if err := m.apply(body); err != nil {
				return err
			}
			data, err := a.query(cc.Context(), args[0], "check", body)
			if err != nil {
				return err
			}
			var ans projections.CheckAnswer
			if err := json.Unmarshal(data, &ans); err != nil {
				return err
			}
			if a.json {
				err = a.printRaw(data)
			} else {
				verdict := "DENIED"
				if ans.Allowed {
					verdict = "ALLOWED"
				}
				fmt.Fprintf(a.stdout, "%s  (seq %d)\n%s\n", verdict, ans.Seq, ans.Reason)
				if len(ans.Grants) > 0 {
					fmt.Fprintln(a.stdout)
					a.printGrants(ans.Grants)
				}
			}
			if err == nil && !ans.Allowed {
				return &exitError{code: exitDenied}
			}
			return err
		},
	}
	m.add(c)
	return c
}

func (a *app) visibleCommand() *cobra.Command {
	var (
		m      momentFlags
		action string
		limit  int
		cursor string
		all    bool
	)
	c := &cobra.Command{
		Use:   "visible <tenant> <principal> <type>",
		Short: "Which records of a type can a principal see (ids ascending, by pages)",
		Example: `  aclctl visible acme bob invoice
  aclctl visible acme bob invoice --all --as-of 500`,
		Args: cobra.ExactArgs(3),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			var ids []string
			seq := uint64(0)
			for {
				body := map[string]any{"principal": args[1], "type": args[2], "action": action, "limit": limit, "cursor": cursor}
				if err := m.apply(body); err != nil {
					return err
				}
				data, err := a.query(cc.Context(), args[0], "visible", body)
				if err != nil {
					return err
				}
				var ans projections.VisibleAnswer
				if err := json.Unmarshal(data, &ans); err != nil {
					return err
				}
				ids, seq, cursor = append(ids, ans.IDs...), ans.Seq, ans.NextCursor
				if !all || cursor == "" {
					break
				}
				if m.asOf == "" && m.minSeq < seq {
					m.minSeq = seq // later pages at least as fresh as the first
				}
			}
			if a.json {
				return a.printJSON(projections.VisibleAnswer{IDs: nonNil(ids), NextCursor: cursor, Seq: seq})
			}
			for _, id := range ids {
				fmt.Fprintln(a.stdout, id)
			}
			if cursor != "" {
				fmt.Fprintf(a.stderr, "more: --cursor %s (or --all)\n", cursor)
			}
			return nil
		},
	}
	m.add(c)
	c.Flags().StringVar(&action, "action", "view", "the action: the permission is <type>.<action>")
	c.Flags().IntVar(&limit, "limit", 0, "page size (default 100, at most 1000)")
	c.Flags().StringVar(&cursor, "cursor", "", "go on after this id (the previous page's next cursor)")
	c.Flags().BoolVar(&all, "all", false, "follow every page")
	return c
}

func (a *app) permissionsCommand() *cobra.Command {
	var m momentFlags
	c := &cobra.Command{
		Use:     "permissions <tenant> <principal>",
		Short:   "What a principal may do: kind, level, roles, grants in force, denials",
		Example: `  aclctl permissions acme bob --as-of 2026-01-31T23:59:59Z`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			body := map[string]any{"principal": args[1]}
			return queryAnswer(cc, a, args[0], "permissions", body, &m, func(ans projections.PermissionsAnswer) error {
				fmt.Fprintf(a.stdout, "kind %s  level %s  roles %s  denied %s  (seq %d)\n\n", ans.Kind, ans.Level,
					list(ans.Roles), list(ans.Denied), ans.Seq)
				a.printGrants(ans.Grants)
				return nil
			})
		},
	}
	m.add(c)
	return c
}

func (a *app) principalsCommand() *cobra.Command {
	var m momentFlags
	c := &cobra.Command{
		Use:     "principals <tenant> <type>/<id> <permission>",
		Short:   "Who is allowed a permission on a record",
		Example: `  aclctl principals acme invoice/inv-1 invoice.view`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cc *cobra.Command, args []string) error {
			rec, err := recordArg(args[1])
			if err != nil {
				return err
			}
			return a.principalList(cc, args[0], "principals", map[string]any{"record": rec, "permission": args[2]}, &m)
		},
	}
	m.add(c)
	return c
}

func (a *app) recipientsCommand() *cobra.Command {
	var m momentFlags
	c := &cobra.Command{
		Use:     "recipients <tenant> <type>/<id>",
		Short:   "Who is notified about a record (owner and assignees, whatever their level)",
		Example: `  aclctl recipients acme case/case-7`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cc *cobra.Command, args []string) error {
			rec, err := recordArg(args[1])
			if err != nil {
				return err
			}
			return a.principalList(cc, args[0], "recipients", map[string]any{"record": rec}, &m)
		},
	}
	m.add(c)
	return c
}

func (a *app) principalList(cc *cobra.Command, tenant, query string, body map[string]any, m *momentFlags) error {
	defer a.close()
	return queryAnswer(cc, a, tenant, query, body, m, func(ans projections.PrincipalsAnswer) error {
		for _, p := range ans.Principals {
			fmt.Fprintln(a.stdout, p)
		}
		return nil
	})
}

// queryAnswer adds the moment flags to body, asks the query, and prints the answer as it came
// (--json) or decoded into T by show.
func queryAnswer[T any](cc *cobra.Command, a *app, tenant, query string, body map[string]any, m *momentFlags, show func(T) error) error {
	if err := m.apply(body); err != nil {
		return err
	}
	data, err := a.query(cc.Context(), tenant, query, body)
	if err != nil || a.json {
		return firstError(err, func() error { return a.printRaw(data) })
	}
	var ans T
	if err := json.Unmarshal(data, &ans); err != nil {
		return fmt.Errorf("%s answer: %w", query, err)
	}
	return show(ans)
}

// printGrants prints grants with their provenance as a table.
func (a *app) printGrants(gs []aggregates.GrantUse) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PERMISSION\tSCOPE\tSOURCE\tNARROWED FROM\tEVENTS")
	for _, g := range gs {
		from := g.NarrowedFrom
		if g.Unscoped {
			from = "(unscoped)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", g.Permission, g.Scope, g.Source, dash(from), strings.Join(g.Events, ","))
	}
	w.Flush()
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstError returns err, or else what then returns.
func firstError(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}
