package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/replay"
)

func (a *app) exportCommand() *cobra.Command {
	var (
		s      subjectFlags
		format string
		out    string
	)
	c := &cobra.Command{
		Use:   "export <tenant> (--principal <id> | --record <type>/<id>)",
		Short: "Export a principal's or record's whole history for an audit (JSON lines or CSV)",
		Long: `Writes every event of a history (see 'aclctl history'), in stream order, as JSON lines (one
envelope with its seq and why per line) or CSV (columns: ` + fmt.Sprint(replay.ExportColumns) + `).
The export describes one moment: pages after the first stop at the first page's sequence.`,
		Example: `  aclctl export acme --principal bob > bob.jsonl
  aclctl export acme --record invoice/inv-1 --format csv -o inv-1.csv --from 2026-01-01T00:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if !slices.Contains(replay.ExportFormats, format) {
				return usagef("--format %q: jsonl or csv", format)
			}
			r, err := s.request()
			if err != nil {
				return err
			}
			r.Limit = replay.MaxHistoryLimit
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
			_, err = a.pages(cc.Context(), args[0], r, &momentFlags{}, true, func(ans aggregates.HistoryAnswer) error {
				for _, e := range ans.Events {
					if err := enc.Write(e); err != nil {
						return err
					}
					n++
				}
				return nil
			})
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
	c.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return c
}
