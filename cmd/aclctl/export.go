package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/replay"
)

// exportColumns are the CSV columns of an export, one row per event.
var exportColumns = []string{"seq", "time", "tenant", "aggregate_kind", "aggregate_type", "aggregate_id",
	"event", "schema", "actor", "via", "command_id", "cause", "event_id", "why", "data"}

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
envelope with its seq and why per line) or CSV (columns: ` + fmt.Sprint(exportColumns) + `).
The export describes one moment: pages after the first stop at the first page's sequence.`,
		Example: `  aclctl export acme --principal bob > bob.jsonl
  aclctl export acme --record invoice/inv-1 --format csv -o inv-1.csv --from 2026-01-01T00:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if format != "jsonl" && format != "csv" {
				return usagef("--format %q: jsonl or csv", format)
			}
			body, err := s.body()
			if err != nil {
				return err
			}
			body["limit"] = replay.MaxHistoryLimit
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
			enc := newExporter(w, format)
			_, err = a.pages(cc.Context(), args[0], body, true, func(ans replay.HistoryAnswer) error {
				for _, e := range ans.Events {
					if err := enc.write(e); err != nil {
						return err
					}
					n++
				}
				return nil
			})
			if ferr := enc.flush(); err == nil {
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

// exporter writes events as JSON lines or CSV rows.
type exporter struct {
	json *json.Encoder
	csv  *csv.Writer
}

func newExporter(w io.Writer, format string) *exporter {
	if format == "csv" {
		c := csv.NewWriter(w)
		c.Write(exportColumns) //nolint:errcheck // reported by flush
		return &exporter{csv: c}
	}
	return &exporter{json: json.NewEncoder(w)}
}

func (x *exporter) write(e replay.HistoryEvent) error {
	if x.json != nil {
		return x.json.Encode(e)
	}
	return x.csv.Write([]string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Tenant,
		e.Aggregate.Kind, e.Aggregate.Type, e.Aggregate.ID, e.Type, strconv.Itoa(e.Schema), e.Actor,
		e.Via, e.CommandID, e.Cause, e.ID, e.Why, string(e.Data)})
}

func (x *exporter) flush() error {
	if x.csv == nil {
		return nil
	}
	x.csv.Flush()
	return x.csv.Error()
}
