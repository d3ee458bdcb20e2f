package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func compareCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "compare <a.json> <b.json>",
		Short: "Compare two results files: throughput and latency of each workload, b against a",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := readReport(args[0])
			if err != nil {
				return err
			}
			b, err := readReport(args[1])
			if err != nil {
				return err
			}
			compare(cmd.OutOrStdout(), a, b)
			return nil
		},
	}
}

// resultKey matches a result of one file with the same measurement in another.
func resultKey(r Result) string { return fmt.Sprintf("%s|%s|%d", r.Workload, r.Variant, r.Records) }

// compare prints, for every measurement both reports have, b's figures and their change from
// a's: + is faster (more throughput, less latency), - is slower.
func compare(w io.Writer, a, b *Report) {
	byKey := map[string]Result{}
	for _, r := range a.Results {
		byKey[resultKey(r)] = r
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tvariant\trecords\tthroughput\tΔ\tp50 µs\tΔ\tp99 µs\tΔ\tRSS MB\tΔ\t")
	for _, rb := range b.Results {
		ra, ok := byKey[resultKey(rb)]
		if !ok {
			continue
		}
		la, lb := latencyOr(ra), latencyOr(rb)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t\n", rb.Workload, rb.Variant, rb.Records,
			fmtRate(rb.Throughput, rb.Unit), change(ra.Throughput, rb.Throughput, true),
			fmtUS(lb.P50), change(la.P50, lb.P50, false), fmtUS(lb.P99), change(la.P99, lb.P99, false),
			rb.Memory.RSSMB, change(ra.Memory.RSSMB, rb.Memory.RSSMB, false))
	}
	tw.Flush()
}

func latencyOr(r Result) Latency {
	if r.Latency == nil {
		return Latency{}
	}
	return *r.Latency
}

// change is the relative change from a to b, signed so that + is better.
func change(a, b float64, higherBetter bool) string {
	if a == 0 || b == 0 {
		return "-"
	}
	d := (b - a) / a * 100
	if !higherBetter {
		d = -d
	}
	return fmt.Sprintf("%+.0f%%", d)
}
