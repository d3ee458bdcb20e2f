package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

func (a *app) rebuildCommand() *cobra.Command {
	var (
		out, replace, model string
		to                  uint64
	)
	c := &cobra.Command{
		Use:   "rebuild (--out <new dir> | --replace <model dir>)",
		Short: "Rebuild a read model from the event stream, with progress",
		Long: `Replays the event stream from sequence 1 into a new read model: the query model
(--model projections, acld's <data>/readmodel) or the audit index of history (--model audit, acld's
<data>/replay/audit). Progress is a bar on a terminal (events/s, ETA), structured log lines
otherwise.

--out writes a new directory (which must not exist or be empty). --replace rebuilds next to an
existing model and swaps it in, keeping the old one as <dir>.old-<time>: acld must be stopped
(it locks its models while it runs).`,
		Example: `  aclctl rebuild --out /tmp/model-rebuilt
  aclctl rebuild --replace ./data/readmodel        # acld stopped
  aclctl rebuild --model audit --replace ./data/replay/audit`,
		Args: cobra.NoArgs,
		RunE: func(cc *cobra.Command, _ []string) error {
			defer a.close()
			if (out == "") == (replace == "") {
				return usagef("give exactly one of --out and --replace")
			}
			m := replay.Model(model)
			if m != replay.ModelProjections && m != replay.ModelAudit {
				return usagef("--model %q: projections or audit", model)
			}
			if replace != "" {
				return a.replaceModel(cc.Context(), replace, m, to)
			}
			return a.rebuild(cc.Context(), out, m, to)
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to rebuild into (new or empty)")
	c.Flags().StringVar(&replace, "replace", "", "model directory to rebuild and swap (acld stopped)")
	c.Flags().StringVar(&model, "model", string(replay.ModelProjections), "projections or audit")
	c.Flags().Uint64Var(&to, "to", 0, "stop at this sequence (default: the stream's last)")
	return c
}

// rebuild replays the stream into dir with progress on stderr.
func (a *app) rebuild(ctx context.Context, dir string, m replay.Model, to uint64) error {
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	prog := newProgress(a.stderr, "rebuild "+string(m))
	p, err := replay.Rebuild(ctx, st, dir, m, to, prog.report)
	prog.finish()
	if err != nil {
		return &exitError{code: exitAnswer, err: err}
	}
	if a.json {
		return a.printJSON(map[string]any{"dir": dir, "model": m, "seq": p.Done, "events": p.Events,
			"seconds": p.Elapsed.Seconds(), "events_per_second": float64(p.Events) / p.Elapsed.Seconds()})
	}
	fmt.Fprintf(a.stdout, "rebuilt %s in %s: %d messages, %d events in %v (%.0f events/s)\n", m, dir, p.Done,
		p.Events, p.Elapsed.Round(time.Millisecond), float64(p.Events)/p.Elapsed.Seconds())
	return nil
}

// replaceModel rebuilds next to dir and swaps the result in.
func (a *app) replaceModel(ctx context.Context, dir string, m replay.Model, to uint64) error {
	if err := notInUse(dir, m); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	next := dir + ".rebuild-" + stamp
	if err := a.rebuild(ctx, next, m, to); err != nil {
		return err
	}
	old := dir + ".old-" + stamp
	if err := os.Rename(dir, old); err != nil {
		return &exitError{code: exitAnswer, err: fmt.Errorf("keep the old model: %w (the rebuilt one is in %s)", err, next)}
	}
	if err := os.Rename(next, dir); err != nil {
		return &exitError{code: exitAnswer, err: fmt.Errorf("swap in %s: %w (the old model is in %s)", next, err, old)}
	}
	fmt.Fprintf(a.stderr, "%s replaced; the old model is kept in %s\n", dir, old)
	return nil
}

// notInUse opens and closes a model: Pebble locks its directory, so this fails while acld runs.
func notInUse(dir string, m replay.Model) error {
	if _, err := os.Stat(dir); err != nil {
		return &exitError{code: exitAnswer, err: err}
	}
	var err error
	if m == replay.ModelAudit {
		var au *replay.Audit
		if au, err = replay.OpenAudit(dir); err == nil {
			err = au.Close()
		}
	} else {
		var db *projections.DB
		if db, err = projections.OpenDB(dir, projections.DBOptions{CacheBytes: 1 << 20}); err == nil {
			err = db.Close()
		}
	}
	if err != nil {
		return &exitError{code: exitAnswer, err: fmt.Errorf("%s is in use (stop acld first): %w", dir, err)}
	}
	return nil
}

func (a *app) verifyCommand() *cobra.Command {
	var data, against, model string
	c := &cobra.Command{
		Use:   "verify (--data <acld data dir> | --against <model dir> | <dir a> <dir b>)",
		Short: "Compare a read model with one rebuilt from the stream, key by key (exit 4 on a difference)",
		Long: `--data takes acld's data directory while acld runs: the newest checkpoint of its query model
(kept in <data>/replay/checkpoints) is copied, the stream is replayed to the same sequence into a
fresh model, and the two are compared key by key, value by value.
--against does the same with a model directory that no process has open (acld stopped).
With two directories, compares them as they are. Differences are listed (at most 100) and
counted; the exit code is 4 when there is any.`,
		Example: `  aclctl verify --data ./data
  aclctl verify --against ./data/replay/audit --model audit   # acld stopped
  aclctl verify ./model-a ./model-b`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			modes := 0
			for _, set := range []bool{data != "", against != "", len(args) > 0} {
				if set {
					modes++
				}
			}
			if modes != 1 || (len(args) > 0 && len(args) != 2) {
				return usagef("give one of --data, --against, or two directories")
			}
			var (
				r   replay.Report
				err error
			)
			switch {
			case len(args) == 2:
				r, err = replay.Verify(args[0], args[1])
			case data != "":
				r, err = a.verifyData(cc.Context(), data)
			default:
				r, err = a.verifyAgainst(cc.Context(), against, replay.Model(model))
			}
			if err != nil {
				return &exitError{code: exitAnswer, err: err}
			}
			return a.printReport(r)
		},
	}
	c.Flags().StringVar(&data, "data", "", "acld's data directory (verify its newest checkpoint)")
	c.Flags().StringVar(&against, "against", "", "a model directory no process has open")
	c.Flags().StringVar(&model, "model", string(replay.ModelProjections), "the model of --against: projections or audit")
	return c
}

func (a *app) verifyData(ctx context.Context, data string) (replay.Report, error) {
	tmp, err := os.MkdirTemp(data, "verify-")
	if err != nil {
		return replay.Report{}, err
	}
	defer os.RemoveAll(tmp)
	ckpt := filepath.Join(tmp, "checkpoint")
	seq, err := replay.CopyLatestCheckpoint(filepath.Join(data, "replay"), ckpt)
	if err != nil {
		return replay.Report{}, err
	}
	fmt.Fprintf(a.stderr, "verifying the checkpoint at sequence %d\n", seq)
	return a.verifyAgainstIn(ctx, ckpt, replay.ModelProjections, tmp)
}

func (a *app) verifyAgainst(ctx context.Context, dir string, m replay.Model) (replay.Report, error) {
	if err := notInUse(dir, m); err != nil {
		return replay.Report{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), "verify-")
	if err != nil {
		return replay.Report{}, err
	}
	defer os.RemoveAll(tmp)
	return a.verifyAgainstIn(ctx, dir, m, tmp)
}

func (a *app) verifyAgainstIn(ctx context.Context, dir string, m replay.Model, tmp string) (replay.Report, error) {
	st, err := a.store(ctx)
	if err != nil {
		return replay.Report{}, err
	}
	prog := newProgress(a.stderr, "rebuild for verify")
	defer prog.finish()
	return replay.VerifyAgainst(ctx, st, dir, m, tmp, prog.report)
}

func (a *app) printReport(r replay.Report) error {
	if a.json {
		if err := a.printJSON(r); err != nil {
			return err
		}
	} else if r.OK() {
		fmt.Fprintf(a.stdout, "no difference in %d keys\n", r.Keys)
	} else {
		fmt.Fprintf(a.stdout, "%d differences in %d keys (a: the model checked, b: rebuilt from the stream)\n", r.Differences, r.Keys)
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tKEY\tA\tB")
		for _, d := range r.Listed {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Kind, d.Key, dash(d.A), dash(d.B))
		}
		tw.Flush()
	}
	if !r.OK() {
		return &exitError{code: exitDenied}
	}
	return nil
}
