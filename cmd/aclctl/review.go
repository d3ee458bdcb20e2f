package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
)

// reviewColumns are the CSV columns of aclctl review: one row per principal and visible type
// (a principal that may view nothing has one row with an empty type).
var reviewColumns = []string{"principal", "kind", "level", "roles", "grants", "type", "visible",
	"last_change_seq", "last_change_time", "last_change_actor", "last_change_command", "last_change_event"}

func (a *app) reviewCommand() *cobra.Command {
	var asOf, format string
	var principals, types []string
	c := &cobra.Command{
		Use:   "review TENANT",
		Short: "The access review: who can do what, for an audit (CSV or JSON lines)",
		Long: `Walks the review query (SPEC section 8) to its end, at one moment (--as-of, default now): per
principal kind, level, roles, effective grants with their sources, the number of records of each
type it may view, and the last change to its access (when, by whom, which command). --format
jsonl writes one principal a line; csv one row per principal and type (columns: ` + strings.Join(reviewColumns, ", ") + `).`,
		Example: `  aclctl review acme --format csv > review.csv
  aclctl review acme --as-of 2026-06-30T23:59:59Z --principal bob --type invoice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if format != "csv" && format != "jsonl" {
				return usagef("--format %q: csv or jsonl", format)
			}
			req := aggregates.ReviewRequest{Principals: principals, Types: types, Limit: 100}
			if asOf != "" {
				m, err := parseMoment("--as-of", asOf)
				if err != nil {
					return err
				}
				req.AsOf = &m
			}
			client, err := a.client()
			if err != nil {
				return err
			}
			cw := csv.NewWriter(a.stdout)
			if format == "csv" {
				cw.Write(reviewColumns)
			}
			for {
				ans, err := client.Review(cc.Context(), args[0], req)
				if err != nil {
					return a.clientError(err)
				}
				for _, p := range ans.Principals {
					if err := writeReview(a, cw, format, p); err != nil {
						return err
					}
				}
				if ans.NextCursor == "" {
					break
				}
				// The next pages read the first page's moment.
				req.Cursor, req.AsOf = ans.NextCursor, &aggregates.Moment{Seq: ans.Seq}
			}
			cw.Flush()
			return cw.Error()
		},
	}
	c.Flags().StringVar(&asOf, "as-of", "", "the moment: a stream sequence or an RFC 3339 time (default now)")
	c.Flags().StringVar(&format, "format", "csv", "csv or jsonl")
	c.Flags().StringSliceVar(&principals, "principal", nil, "only these principals (repeat or comma-separate)")
	c.Flags().StringSliceVar(&types, "type", nil, "only these record types")
	return c
}

func writeReview(a *app, cw *csv.Writer, format string, p aggregates.ReviewPrincipal) error {
	if format == "jsonl" {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	var grants []string
	for _, g := range p.Grants {
		grants = append(grants, grantText(g))
	}
	last := []string{"", "", "", "", ""}
	if c := p.LastChange; c != nil {
		last = []string{strconv.FormatUint(c.Seq, 10), c.Time.UTC().Format("2006-01-02T15:04:05Z"), c.Actor, c.Command, c.Type}
	}
	row := func(typ, n string) error {
		return cw.Write(append([]string{p.Principal, p.Kind, p.Level, strings.Join(p.Roles, " "), strings.Join(grants, "; "), typ, n}, last...))
	}
	if len(p.Visible) == 0 {
		return row("", "")
	}
	for _, typ := range slices.Sorted(maps.Keys(p.Visible)) {
		if err := row(typ, strconv.Itoa(p.Visible[typ])); err != nil {
			return err
		}
	}
	return nil
}
