package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

func (a *app) exportCommand() *cobra.Command {
	var (
		s      subjectFlags
		format string
		out    string
		all    bool
	)
	c := &cobra.Command{
		Use:   "export <tenant> (--principal <id> | --record <type>/<id> | --all)",
		Short: "Export a principal's or record's whole history for an audit, or a whole tenant (JSON lines or CSV)",
		Long: `Writes every event of a history (see 'aclctl history'), in stream order, as JSON lines (one
envelope with its seq and why per line) or CSV (columns: ` + fmt.Sprint(replay.ExportColumns) + `).
The export describes one moment: pages after the first stop at the first page's sequence.

--all writes every event of the tenant instead, read from the event stream up to its last
sequence when the export starts (this needs the right to read the stream, not a query; --from
and --to do not apply). 'aclctl import' loads such an export into another acld through every
guard of the commands that wrote it.`,
		Example: `  aclctl export acme --principal bob > bob.jsonl
  aclctl export acme --record invoice/inv-1 --format csv -o inv-1.csv --from 2026-01-01T00:00:00Z
  aclctl export acme --all -o acme.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if !slices.Contains(replay.ExportFormats, format) {
				return usagef("--format %q: jsonl or csv", format)
			}
			var r aggregates.HistoryRequest
			if !all {
				var err error
				if r, err = s.request(); err != nil {
					return err
				}
				r.Limit = replay.MaxHistoryLimit
			} else if s != (subjectFlags{}) {
				return usagef("--all exports the whole tenant: no --principal, --record, --from or --to")
			}
			w := a.stdout
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return &exitError{code: exitAnswer, err: err}
				}
				defer f.Close()
				w = f
			}
			n := 0
			enc, err := replay.NewExporter(w, format)
			if err != nil {
				return err
			}
			if all {
				n, err = a.exportTenant(cc.Context(), args[0], enc)
			} else {
				_, err = a.pages(cc.Context(), args[0], r, &momentFlags{}, true, func(ans aggregates.HistoryAnswer) error {
					for _, e := range ans.Events {
						if err := enc.Write(e); err != nil {
							return err
						}
						n++
					}
					return nil
				})
			}
			if ferr := enc.Flush(); err == nil {
				err = ferr
			}
			if err == nil && out != "" && out != "-" {
				fmt.Fprintf(a.stderr, "%d events written to %s\n", n, out)
			}
			return err
		},
	}
	s.add(c)
	c.Flags().BoolVar(&all, "all", false, "every event of the tenant, from the event stream (for 'aclctl import' into another acld)")
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return c
}

// exportTenant writes every event of a tenant, read from the stream up to its last sequence now.
func (a *app) exportTenant(ctx context.Context, tenant string, enc *replay.Exporter) (int, error) {
	if !events.ValidToken(tenant) {
		return 0, usagef("tenant %q must be 1 to 64 of A-Z a-z 0-9 _ -", tenant)
	}
	st, err := a.store(ctx)
	if err != nil {
		return 0, err
	}
	prefix, n := events.Prefix+"."+tenant+".", 0
	err = st.Read(ctx, 1, 0, func(msgs []events.Message) error {
		for _, m := range msgs {
			if !strings.HasPrefix(m.Subject, prefix) {
				continue
			}
			for _, e := range m.Events {
				e.CommandHash = "" // internal: the digest the service checks a repeated command id against
				if err := enc.Write(replay.HistoryEvent{Envelope: e}); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			err = &exitError{code: exitUnavailable, err: err}
		}
	}
	return n, err
}
