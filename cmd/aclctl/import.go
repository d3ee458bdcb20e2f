package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// importLine is one line of an import file: a command for a tenant, as `aclbench gen` writes
// them. phase is a label some generators add; it is ignored.
type importLine struct {
	Tenant  string          `json:"tenant"`
	Command string          `json:"command"`
	Body    json.RawMessage `json:"body"`
	Phase   string          `json:"phase,omitempty"`
}

// importProgress is what the progress file keeps: how far into which file the commands were
// answered, so that a run interrupted at any point resumes after the last answered batch.
type importProgress struct {
	File     string `json:"file"`
	Size     int64  `json:"size"`
	ModTime  int64  `json:"mod_time"`
	Offset   int64  `json:"offset"`   // bytes of the file answered
	Line     int    `json:"line"`     // lines answered
	Commands int    `json:"commands"` // commands answered
	Seq      uint64 `json:"seq"`      // the highest sequence answered
}

// maxBatchBytes keeps a batch request under NATS's default 1 MB payload limit.
const maxBatchBytes = 768 << 10

func (a *app) importCommand() *cobra.Command {
	var (
		batch    int
		progFile string
		restart  bool
	)
	c := &cobra.Command{
		Use:   "import <file>",
		Short: "Load commands in bulk from a JSON lines file, resumably",
		Long: `Sends every line of the file, {"tenant":..,"command":..,"body":{..}} (the format 'aclbench gen'
writes), through the command service's bulk path: batches of up to --batch commands of one
tenant, carried out in order with every check a command sent alone has (identity, body, guards).
Every body must carry its command_id: that is what makes an import idempotent. A line the
service refuses stops the import; it is reported with its line number and nothing of it is
written.

Progress is kept in --progress-file (default <file>.progress) after every answered batch: run
the same command again after an interruption and it resumes there. Commands sent again (the batch
in flight when it stopped) are applied once and answer as they did the first time. The file is
removed when the import is complete. The last line printed is the stream sequence reached
(use it as --min-seq).`,
		Example: `  aclbench gen --presets compare --records 2e5 --principals 10000 > data.jsonl
  aclctl import data.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if batch < 1 || batch > commands.MaxBatch {
				return usagef("--batch %d: 1 to %d", batch, commands.MaxBatch)
			}
			if progFile == "" {
				progFile = args[0] + ".progress"
			}
			return a.importFile(cc.Context(), args[0], progFile, batch, restart)
		},
	}
	c.Flags().IntVar(&batch, "batch", commands.MaxBatch, "commands per request")
	c.Flags().StringVar(&progFile, "progress-file", "", "where progress is kept (default <file>.progress)")
	c.Flags().BoolVar(&restart, "restart", false, "ignore the progress file and start from the first line (safe: commands already applied answer as before)")
	return c
}

// pendingBatch is a batch being gathered: one tenant's commands and the lines they came from.
type pendingBatch struct {
	tenant string
	cmds   []commands.BatchCommand
	lines  []int
	names  []string
	bytes  int
	end    int64 // file offset after its last line
}

func (a *app) importFile(ctx context.Context, path, progFile string, batchSize int, restart bool) error {
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	abs, _ := filepath.Abs(path)
	prog := importProgress{File: abs, Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	if !restart {
		if old, ok := readProgress(progFile); ok && old.File == prog.File && old.Size == prog.Size && old.ModTime == prog.ModTime {
			prog = old
			if _, err := f.Seek(prog.Offset, io.SeekStart); err != nil {
				return &exitError{code: exitAnswer, err: err}
			}
			fmt.Fprintf(a.stderr, "resuming %s at line %d (%d commands answered before)\n", path, prog.Line+1, prog.Commands)
		}
	}
	nc, err := a.conn()
	if err != nil {
		return err
	}
	client := commands.NewClientWatching(nc, a.violations)
	bar := newImportBar(a.stderr, st.Size(), prog.Offset)
	start, startCmds := time.Now(), prog.Commands

	send := func(b *pendingBatch) error {
		if len(b.cmds) == 0 {
			return nil
		}
		out, err := client.Batch(ctx, b.tenant, b.cmds)
		if err != nil {
			return importError(err, fmt.Sprintf("lines %d-%d", b.lines[0], b.lines[len(b.lines)-1]))
		}
		// The progress file keeps the last batch answered whole: a run resumed after a refusal
		// sends this batch again, and its commands stored before the refusal answer as before.
		for i, o := range out {
			if o.Err != nil {
				return importError(o.Err, fmt.Sprintf("line %d (%s)", b.lines[i], b.names[i]))
			}
			prog.Seq = max(prog.Seq, o.Result.Seq)
		}
		if len(out) < len(b.cmds) {
			return &exitError{code: exitAnswer, err: fmt.Errorf("lines %d-%d: the service answered %d of %d commands", b.lines[0], b.lines[len(b.lines)-1], len(out), len(b.cmds))}
		}
		prog.Offset, prog.Line, prog.Commands = b.end, b.lines[len(b.lines)-1], prog.Commands+len(b.cmds)
		if err := writeProgress(progFile, prog); err != nil {
			return &exitError{code: exitAnswer, err: err}
		}
		bar.set(prog.Offset, prog.Commands)
		return nil
	}

	r := bufio.NewReaderSize(f, 1<<20)
	offset, line := prog.Offset, prog.Line
	b := &pendingBatch{}
	for {
		raw, rerr := r.ReadBytes('\n')
		if len(raw) > 0 {
			line++
			offset += int64(len(raw))
			l, err := parseImportLine(raw)
			if err != nil {
				if serr := send(b); serr != nil {
					return serr
				}
				return &exitError{code: exitAnswer, err: fmt.Errorf("%s line %d: %w (nothing of it was sent)", path, line, err)}
			}
			if l != nil {
				if b.tenant != l.Tenant || len(b.cmds) == batchSize || b.bytes+len(raw) > maxBatchBytes {
					if err := send(b); err != nil {
						return err
					}
					b = &pendingBatch{tenant: l.Tenant}
				}
				b.cmds = append(b.cmds, commands.BatchCommand{Command: l.Command, Body: l.Body})
				b.lines = append(b.lines, line)
				b.names = append(b.names, l.Command)
				b.bytes += len(raw)
			}
			b.end = offset
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &exitError{code: exitAnswer, err: rerr}
		}
	}
	if err := send(b); err != nil {
		return err
	}
	bar.finish()
	os.Remove(progFile)
	n := prog.Commands - startCmds
	d := time.Since(start)
	fmt.Fprintf(a.stderr, "imported %d commands in %s (%.0f/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	fmt.Fprintln(a.stdout, prog.Seq)
	return nil
}

// parseImportLine reads one line; a blank line is nil.
func parseImportLine(raw []byte) (*importLine, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var l importLine
	if err := aggregates.DecodeStrict("line", raw, &l); err != nil {
		return nil, errors.New(err.Message)
	}
	switch {
	case l.Tenant == "":
		return nil, errors.New(`no "tenant"`)
	case aggregates.NewCommand(l.Command) == nil:
		return nil, fmt.Errorf("unknown command %q", l.Command)
	case len(l.Body) == 0:
		return nil, errors.New(`no "body"`)
	}
	var id struct {
		CommandID string `json:"command_id"`
	}
	if err := json.Unmarshal(l.Body, &id); err != nil || id.CommandID == "" {
		return nil, errors.New(`the body has no "command_id": an import must name every command, so that running it again applies nothing twice`)
	}
	return &l, nil
}

// importError maps an answer to the exit codes scripts rely on.
func importError(err error, where string) error {
	code := exitAnswer
	if aggregates.ErrorCode(err) == aggregates.CodeUnavailable {
		code = exitUnavailable
	}
	return &exitError{code: code, err: fmt.Errorf("%s: %w", where, err)}
}

func readProgress(path string) (importProgress, bool) {
	var p importProgress
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &p) != nil || p.Offset < 0 {
		return p, false
	}
	return p, true
}

// writeProgress replaces the progress file whole (a rename), so that a kill leaves the old or
// the new one.
func writeProgress(path string, p importProgress) error {
	b, _ := json.Marshal(p)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("progress file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("progress file: %w", err)
	}
	return nil
}

// importBar shows an import's progress: a bar in bytes on a terminal, log lines elsewhere.
type importBar struct {
	bar  *progressbar.ProgressBar
	log  *slog.Logger
	size int64
	last time.Time
}

func newImportBar(w io.Writer, size, at int64) *importBar {
	b := &importBar{size: size}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.bar = progressbar.NewOptions64(size, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("import"),
			progressbar.OptionShowBytes(true), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowElapsedTimeOnFinish())
		b.bar.Set64(at) //nolint:errcheck // a bar that fails to draw is no failure
		return b
	}
	b.log = slog.New(slog.NewTextHandler(w, nil))
	return b
}

func (b *importBar) set(offset int64, cmds int) {
	if b.bar != nil {
		b.bar.Set64(offset) //nolint:errcheck
		return
	}
	if time.Since(b.last) < logEvery {
		return
	}
	b.last = time.Now()
	b.log.Info("import", "commands", cmds, "bytes", offset, "of", b.size)
}

func (b *importBar) finish() {
	if b.bar != nil {
		b.bar.Finish() //nolint:errcheck
	}
}
