package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
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
			q := aggregates.CheckQuery{Principal: args[1], Permission: args[2]}
			if len(args) == 4 {
				rec, err := recordArg(args[3])
				if err != nil {
					return err
				}
				q.Record = &rec
			}
			ans, err := ask(cc.Context(), a, args[0], &m, func(c *commands.Client, o []commands.QueryOption) (aggregates.CheckAnswer, error) {
				return c.Check(cc.Context(), args[0], q, o...)
			})
			if err != nil {
				return err
			}
			if a.json {
				err = a.printJSON(ans)
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
			q := aggregates.VisibleQuery{Principal: args[1], Type: args[2], Action: action, Limit: limit, Cursor: cursor}
			for {
				ans, err := ask(cc.Context(), a, args[0], &m, func(c *commands.Client, o []commands.QueryOption) (aggregates.VisibleAnswer, error) {
					// later pages at least as fresh as the first
					return c.VisiblePage(cc.Context(), args[0], q, append(o, commands.MinSeq(seq))...)
				})
				if err != nil {
					return err
				}
				ids, seq, q.Cursor = append(ids, ans.IDs...), ans.Seq, ans.NextCursor
				if !all || q.Cursor == "" {
					break
				}
			}
			cursor = q.Cursor
			if a.json {
				return a.printJSON(aggregates.VisibleAnswer{IDs: nonNil(ids), NextCursor: cursor, Seq: seq})
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
			ask := func(c *commands.Client, o []commands.QueryOption) (aggregates.PermissionsAnswer, error) {
				return c.Permissions(cc.Context(), args[0], aggregates.PermissionsQuery{Principal: args[1]}, o...)
			}
			return show(cc, a, args[0], &m, ask, func(ans aggregates.PermissionsAnswer) error {
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
			return a.principalList(cc, args[0], &m, func(c *commands.Client, o []commands.QueryOption) (aggregates.PrincipalsAnswer, error) {
				return c.Principals(cc.Context(), args[0], aggregates.PrincipalsQuery{Record: rec, Permission: args[2]}, o...)
			})
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
			return a.principalList(cc, args[0], &m, func(c *commands.Client, o []commands.QueryOption) (aggregates.PrincipalsAnswer, error) {
				return c.Recipients(cc.Context(), args[0], aggregates.RecipientsQuery{Record: rec}, o...)
			})
		},
	}
	m.add(c)
	return c
}

func (a *app) principalList(cc *cobra.Command, tenant string, m *momentFlags, query func(*commands.Client, []commands.QueryOption) (aggregates.PrincipalsAnswer, error)) error {
	defer a.close()
	return show(cc, a, tenant, m, query, func(ans aggregates.PrincipalsAnswer) error {
		for _, p := range ans.Principals {
			fmt.Fprintln(a.stdout, p)
		}
		return nil
	})
}

// show asks a typed query with the moment flags and prints the answer: as JSON (--json), or
// by print.
func show[T any](cc *cobra.Command, a *app, tenant string, m *momentFlags, query func(*commands.Client, []commands.QueryOption) (T, error), print func(T) error) error {
	ans, err := ask(cc.Context(), a, tenant, m, query)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(ans)
	}
	return print(ans)
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
