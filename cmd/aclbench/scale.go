package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func scaleCommand() *cobra.Command {
	var o options
	var records, scales, svg string
	cmd := &cobra.Command{
		Use:   "scale <workload>[,<workload>...]|all",
		Short: "Run workloads at growing data sets (--scales) and show how each cost grows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := selectWorkloads(args[0])
			if err != nil {
				return err
			}
			var sizes []int
			for _, s := range strings.Split(scales, ",") {
				n, err := parseCount(strings.TrimSpace(s))
				if err != nil {
					return err
				}
				sizes = append(sizes, n)
			}
			if o.dataDir != "" {
				return fmt.Errorf("scale loads a fresh data set per size: --data is not for it")
			}
			defaultOut(&o)
			all := newReport(os.Args, "in-process")
			var runErr error
			for _, n := range sizes {
				so := o
				so.scale.Records = n
				fmt.Fprintf(cmd.OutOrStdout(), "### %d records\n", n)
				rep, err := runOnce(cmd.Context(), so, ws, os.Args, cmd.OutOrStdout())
				if rep != nil {
					all.Results = append(all.Results, rep.Results...)
					all.Profiles = append(all.Profiles, rep.Profiles...)
				}
				if err != nil {
					runErr = fmt.Errorf("at %d records: %w", n, err)
					break
				}
			}
			if err := all.write(o.out); err != nil {
				return err
			}
			printGrowth(cmd.OutOrStdout(), all.Results)
			if svg != "" {
				if err := os.WriteFile(svg, []byte(plotSVG(all.Results)), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "plot: %s\n", svg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "results: %s\n", o.out)
			return runErr
		},
	}
	runFlags(cmd.Flags(), &o, &records)
	cmd.Flags().StringVar(&scales, "scales", "1e4,1e5", "record counts to run at")
	cmd.Flags().StringVar(&svg, "svg", "", "write a plot of latency and cost per operation against records to this SVG file")
	return cmd
}

// series groups one measurement's results across scales.
type series struct {
	key    string // workload/variant
	points []Result
}

// seriesOf groups results by workload and variant (the variant's worker count included), each
// sorted by records.
func seriesOf(rs []Result) []series {
	by := map[string][]Result{}
	for _, r := range rs {
		if r.Workload == "load" && strings.HasPrefix(r.Variant, "commands/") {
			continue // phase figures: too many lines
		}
		k := r.Workload
		if r.Variant != "" {
			k += "/" + r.Variant
		}
		by[k] = append(by[k], r)
	}
	var out []series
	for k, ps := range by {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Records < ps[j].Records })
		out = append(out, series{k, ps})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// growth is the exponent k of cost ~ records^k between two points: 0 flat, 1 linear.
func growth(a, b, na, nb float64) string {
	if a <= 0 || b <= 0 || na <= 0 || nb <= 0 || na == nb || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f", math.Log(b/a)/math.Log(nb/na))
}

// printGrowth prints each measurement across scales, and the exponent of its growth between
// the smallest and the largest: the cost per operation (1/throughput) and the p99.
func printGrowth(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\trecords\tthroughput\tp50 µs\tp99 µs\tRSS MB\tgrowth of cost/op\tgrowth of p99\t")
	for _, s := range seriesOf(rs) {
		first, last := s.points[0], s.points[len(s.points)-1]
		for i, p := range s.points {
			l := latencyOr(p)
			g1, g2 := "", ""
			if i == len(s.points)-1 && len(s.points) > 1 {
				g1 = growth(1/first.Throughput, 1/last.Throughput, float64(first.Records), float64(last.Records))
				g2 = growth(latencyOr(first).P99, l.P99, float64(first.Records), float64(last.Records))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.0f\t%s\t%s\t\n", s.key, p.Records, fmtRate(p.Throughput, p.Unit),
				fmtUS(l.P50), fmtUS(l.P99), p.Memory.RSSMB, g1, g2)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "growth: k in cost ~ records^k between the smallest and largest scale (0 flat, 1 linear)")
}
