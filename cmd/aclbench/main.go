package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "aclbench:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "aclbench",
		Short:         "Load generator and benchmarks of the access-control backend (see doc.go)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCommand(), scaleCommand(), compareCommand(), genCommand())
	return root
}

// runFlags binds the flags shared by run and scale.
func runFlags(fs *pflag.FlagSet, o *options, records *string) {
	fs.DurationVar(&o.memoryIdle, "memory-idle", 0, "the memory workload first waits this long, sending nothing, and reports the memory then (e.g. 70s: past acld's drop of its caches 60 s into an idle period), so that --max-rss-mb checks a server at rest after the workloads; 0: right after them")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the data set: the same seed gives the same tenants and commands")
	fs.StringVar(records, "records", "10000", "records over all tenants (10000, 1e5, 1e6)")
	fs.IntVar(&o.scale.Principals, "principals", 0, "principals over all tenants (0: records/10, within 10^3..10^5)")
	fs.IntVar(&o.scale.Tenants, "tenants", 1, "tenants")
	fs.StringSliceVar(&o.scale.Presets, "presets", []string{"trackops"}, "presets of the tenants, in turn (trackops, reconpro, probuild)")
	fs.StringVar(&o.scale.Prefix, "prefix", "bench", "tenant ids are <prefix>-<preset>-<n>")
	fs.StringVar(&o.load, "load", "fast", "how to load the data set: fast (events straight to the stream), commands (the command path), none")
	fs.IntVar(&o.loadConcurrency, "load-concurrency", 64, "commands in flight while loading by the command path")
	fs.IntVar(&o.loadConns, "load-connections", 4, "NATS connections of the command-path loader")
	fs.StringVar(&o.dataDir, "data", "", "data directory of the in-process server (default: a temp dir, removed at the end); a directory loaded before with the same seed and scale is reused")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp data directory")
	fs.StringVar(&o.natsURL, "nats-url", "", "run against a running acld's NATS instead of in-process")
	fs.StringVar(&o.httpURL, "http-url", "", "HTTP base URL of a running acld (for --via http and check-http)")
	fs.StringVar(&o.token, "token", os.Getenv("ACLBENCH_TOKEN"), "bearer token for --http-url, for an acld started with --auth (env ACLBENCH_TOKEN)")
	fs.StringVar(&o.natsUser, "nats-user", "", "NATS user for --nats-url, for an acld started with --auth")
	fs.StringVar(&o.natsPassword, "nats-password", os.Getenv("ACLBENCH_NATS_PASSWORD"), "password of --nats-user (env ACLBENCH_NATS_PASSWORD)")
	fs.StringVar(&o.sync, "sync", "", "fsync of the embedded server: always or an interval (default: the product's, 100ms)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each workload (and variant) runs")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run before each query workload")
	fs.IntSliceVar(&o.clients, "clients", []int{1, 4, 16}, "client counts of the commands workload")
	fs.IntVar(&o.workers, "workers", 0, "concurrent callers of query workloads (0: 2 in-process, 32 over HTTP/NATS, 4 for ryw, 1 for asof)")
	fs.IntVar(&o.httpConns, "http-conns", 0, "keep-alive HTTP connections (0: one per caller)")
	fs.IntVar(&o.natsConns, "nats-conns", 4, "NATS connections of query callers")
	fs.StringVar(&o.via, "via", "inprocess", "how visible, principals and ryw ask: inprocess, http or nats")
	fs.StringVar(&o.out, "out", "", "results JSON file (default /tmp/aclbench-<time>.json)")
	fs.StringVar(&o.profileDir, "profile", "", "write a CPU and a heap profile of each workload to this directory")
	fs.Uint64Var(&o.checkpointEvery, "checkpoint-every", 1000, "as_of: a read-model checkpoint every N events (acld's default)")
	fs.IntVar(&o.cacheMB, "cache-mb", 64, "Pebble block cache of the read model, MiB (acld's default, see acld --help)")
	fs.StringVar(&o.run, "run", "", "token that makes this run's new ids and command ids differ from other runs' (default: from the time)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress output")
	fs.BoolVar(&o.rywLink, "ryw-link", false, "ryw assigns the record the probe record links to and checks the probe record (compare: assign a case, then check an invoice of it, issue 13's workload); without it, it assigns and checks the probe record itself")
}

// parseCount reads 10000, 1e5 or 1_000_000.
func parseCount(s string) (int, error) {
	s = strings.ReplaceAll(s, "_", "")
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f == float64(int(f)) {
		return int(f), nil
	}
	return 0, fmt.Errorf("%q is not a count", s)
}

func defaultOut(o *options) {
	if o.out == "" {
		o.out = fmt.Sprintf("/tmp/aclbench-%s.json", time.Now().Format("20060102-150405"))
	}
}

func runCommand() *cobra.Command {
	var o options
	var records string
	var maxRSS float64
	cmd := &cobra.Command{
		Use:   "run <workload>[,<workload>...]|all",
		Short: "Load a data set and run workloads on it: " + strings.Join(workloadNames(), ", "),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseCount(records)
			if err != nil {
				return err
			}
			o.scale.Records = n
			ws, err := selectWorkloads(args[0])
			if err != nil {
				return err
			}
			defaultOut(&o)
			rep, err := runOnce(cmd.Context(), o, ws, os.Args, cmd.OutOrStdout())
			if rep != nil {
				if werr := rep.write(o.out); werr != nil {
					return werr
				}
				fmt.Fprintf(cmd.OutOrStdout(), "results: %s\n", o.out)
				if err == nil {
					err = rep.overRSS(maxRSS)
				}
			}
			return err
		},
	}
	runFlags(cmd.Flags(), &o, &records)
	cmd.Flags().Float64Var(&maxRSS, "max-rss-mb", 0, "fail (exit 1) when a memory result's RSS exceeds this many MB: the check of issue 13's memory aim, run by hand (e.g. 300 at 10^5, the aim plus 50%)")
	return cmd
}

// overRSS fails when a memory result exceeds max MB (0: no bound).
func (r *Report) overRSS(max float64) error {
	if max <= 0 {
		return nil
	}
	found := false
	for _, res := range r.Results {
		if res.Workload != "memory" {
			continue
		}
		found = true
		if res.Memory.RSSMB > max {
			return fmt.Errorf("memory/%s: RSS %.0f MB, more than --max-rss-mb %.0f", res.Variant, res.Memory.RSSMB, max)
		}
	}
	if !found {
		return errors.New("--max-rss-mb: the run has no memory result (add the memory workload)")
	}
	return nil
}

// runOnce loads a data set and runs the workloads on it; the report holds what was measured
// even when a workload fails.
func runOnce(ctx context.Context, o options, ws []workload, args []string, w io.Writer) (*Report, error) {
	b, err := newBench(o, w, args)
	if err != nil {
		return nil, err
	}
	b.needReplay = needsReplay(ws)
	if err := b.open(ctx); err != nil {
		return b.rep, err
	}
	defer b.close()
	stopProfile, err := b.startProfile("load")
	if err != nil {
		return b.rep, err
	}
	err = b.load(ctx)
	stopProfile()
	if err != nil {
		return b.rep, err
	}
	for _, w := range ws {
		fmt.Fprintf(b.w, "== %s: %s\n", w.name, w.about)
		if w.live {
			if err := b.readSide(ctx); err != nil {
				return b.rep, fmt.Errorf("%s: %w", w.name, err)
			}
		}
		stopProfile, err := b.startProfile(w.name)
		if err != nil {
			return b.rep, err
		}
		rs, err := w.run(ctx, b)
		stopProfile()
		b.serverMemory(rs)
		b.add(rs...)
		if err != nil {
			return b.rep, fmt.Errorf("%s: %w", w.name, err)
		}
		if ctx.Err() != nil {
			return b.rep, ctx.Err()
		}
	}
	return b.rep, nil
}
