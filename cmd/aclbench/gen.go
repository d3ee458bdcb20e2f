package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func genCommand() *cobra.Command {
	var o options
	var records string
	var limit int
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Print the commands that load a data set, one JSON line each (tenant, command, body)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := parseCount(records)
			if err != nil {
				return err
			}
			o.scale.Records = n
			ds, err := NewDataset(o.seed, o.scale)
			if err != nil {
				return err
			}
			return writeCommands(cmd.OutOrStdout(), ds, limit)
		},
	}
	fs := cmd.Flags()
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the data set")
	fs.StringVar(&records, "records", "1000", "records over all tenants")
	fs.IntVar(&o.scale.Principals, "principals", 0, "principals over all tenants (0: records/10, within 10^3..10^5)")
	fs.IntVar(&o.scale.Tenants, "tenants", 1, "tenants")
	fs.StringSliceVar(&o.scale.Presets, "presets", []string{"trackops"}, "presets of the tenants, in turn")
	fs.StringVar(&o.scale.Prefix, "prefix", "bench", "tenant id prefix")
	fs.IntVar(&limit, "limit", 0, "stop after this many commands (0: all)")
	return cmd
}

// commandLine is one generated command as gen prints it.
type commandLine struct {
	Tenant  string `json:"tenant"`
	Phase   string `json:"phase"`
	Command string `json:"command"`
	Body    any    `json:"body"`
}

// writeCommands prints every command of the data set's phases, tenant after tenant, in the
// order the fast path issues them.
func writeCommands(w io.Writer, ds *Dataset, limit int) error {
	enc := json.NewEncoder(w)
	n := 0
	for _, t := range ds.Tenants {
		for _, ph := range t.Phases() {
			for i := range ph.Items {
				for _, c := range ph.Item(i) {
					if limit > 0 && n >= limit {
						return nil
					}
					if err := enc.Encode(commandLine{Tenant: t.ID, Phase: ph.Name, Command: c.Name(), Body: c}); err != nil {
						return fmt.Errorf("gen: %w", err)
					}
					n++
				}
			}
		}
	}
	return nil
}
