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
	"slices"
	"strings"
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
	// Witness is the command answered with events at the highest sequence, asked of the server on a resume
	// (checkResume); absent in a progress file from before round 16.
	Witness *importWitness `json:"witness,omitempty"`
}

// maxBatchBytes keeps a batch request under NATS's default 1 MB payload limit.
const maxBatchBytes = 768 << 10

func (a *app) importCommand() *cobra.Command {
	var o importOptions
	c := &cobra.Command{
		Use:   "import <file>",
		Short: "Load commands in bulk from a JSON lines file or an export, resumably",
		Long: `Sends every line of the file, {"tenant":..,"command":..,"body":{..}} (the format 'aclbench gen'
writes), through the command service's bulk path: batches of up to --batch commands of one
tenant, carried out in order with every check a command sent alone has (identity, body, guards).
Every body must carry its command_id: that is what makes an import idempotent. A line the
service refuses stops the import; it is reported with its line number and nothing of it is
written.

The file may also be an export ('aclctl export', JSON lines or CSV; found by its first line, or
say --format export). Its events are not appended as they are: the events of each command (one
command_id, on adjacent lines) are turned back into the command that wrote them, with its
command_id and actor (--actor names another, for a caller that may not act as the recorded
ones), and that command goes through the same checks. Loaded into a fresh acld, a whole tenant's
export ('aclctl export <tenant> --all') gives a tenant that answers every query as the original
did. What is not carried over: the stream is a new history, so sequences, times (as_of and
history show the import's), event ids and the recorded caller identity (via: the importer's)
are new. Events no command could have written as they are (part of a command whose other events
decide it, a preset changed since the tenant was created, an unknown type) stop the import with
the line number and invalid_argument. A history export of one principal or record holds only
part of the tenant: its commands answer not_found where they need what it lacks.

Progress is kept in --progress-file (default <file>.progress) after every answered batch: run
the same command again after an interruption and it resumes there. Commands sent again (the batch
in flight when it stopped) are applied once and answer as they did the first time. The file is
removed when the import is complete. The last line printed is the stream sequence reached
(use it as --min-seq).`,
		Example: `  aclbench gen --presets compare --records 2e5 --principals 10000 > data.jsonl
  aclctl import data.jsonl
  aclctl --nats-url nats://old:4222 export acme --all -o acme.jsonl
  aclctl --nats-url nats://new:4222 import acme.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			defer a.close()
			if o.pipeline < 1 || o.pipeline > 4 {
				return usagef("--pipeline %d: 1 to 4", o.pipeline)
			}
			if o.batch < 1 || o.batch > commands.MaxBatch {
				return usagef("--batch %d: 1 to %d", o.batch, commands.MaxBatch)
			}
			if !slices.Contains(importFormats, o.format) {
				return usagef("--format %q: one of %v", o.format, importFormats)
			}
			if o.progFile == "" {
				o.progFile = args[0] + ".progress"
			}
			return a.importFile(cc.Context(), args[0], o)
		},
	}
	c.Flags().IntVar(&o.batch, "batch", commands.MaxBatch, "commands per request")
	c.Flags().StringVar(&o.progFile, "progress-file", "", "where progress is kept (default <file>.progress)")
	c.Flags().BoolVar(&o.restart, "restart", false, "ignore the progress file and start from the first line (safe: commands already applied answer as before)")
	c.Flags().StringVar(&o.format, "format", formatAuto, "auto (from the first line), commands, or export (JSON lines or CSV of 'aclctl export')")
	c.Flags().StringVar(&o.actor, "actor", "", "export: issue every command as this actor instead of the recorded one (system may issue all)")
	c.Flags().IntVar(&o.pipeline, "pipeline", 1, "batches in flight, up to 4: with 2, acld decides the next batch while the one before takes the store's last answers (an acld from before pipes, or several acld instances behind the subject, get one at a time); a command refused only when its append is answered (a race with another writer) may then come after the next batch's commands were stored, where with 1 it may come after its own batch's; an acld before round 16 kept every batch of a pipe in memory until its end (GBs, and slower: README, Round 16: import)")
	c.Flags().BoolVar(&o.hold, "hold-read-side", false, "ask acld to hold its read model, audit index and change feed while the import runs, up to its --bulk-lag messages behind, and catch up after: less CPU during an import on a busy machine, but meanwhile every tenant's min_seq reads may answer not_caught_up and the change feed waits (for an initial load before traffic); only an identity that may address every tenant may ask, and an acld before this flag refuses it")
	return c
}

// pendingBatch is a batch being gathered: one tenant's commands and where they came from.
type pendingBatch struct {
	tenant string
	cmds   []commands.BatchCommand
	items  []importItem // where each command came from, for errors (importItem.where)
	first  int          // the first line of its first command
	last   int          // the last line of its last command
	bytes  int
	end    int64 // file offset after its last line
}

// importItem is one command to send: a line of commands, or the events of one command of an
// export turned back into it.
type importItem struct {
	tenant, command string
	body            json.RawMessage
	first, last     int   // the lines it came from
	end             int64 // file offset after its last line
	size            int   // bytes it takes in a batch request
}

// where names the lines of an item for messages.
func (it *importItem) where() string {
	if it.first == it.last {
		return fmt.Sprintf("line %d (%s)", it.first, it.command)
	}
	return fmt.Sprintf("lines %d-%d (%s)", it.first, it.last, it.command)
}

// importSource yields a file's commands in order: nil at the end. Its errors name the line.
type importSource interface {
	next() (*importItem, error)
}

// importOptions are the flags of an import.
type importOptions struct {
	batch    int
	progFile string
	restart  bool
	format   string // auto, commands or export
	actor    string // replaces the recorded actor of an export's commands
	hold     bool   // ask acld to hold its read side while the import runs (BatchRequest.Load)
	pipeline int    // batches in flight (commands.Pipeline)
}

func (a *app) importFile(ctx context.Context, path string, o importOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	format, err := detectFormat(f, o.format)
	if err != nil {
		return &exitError{code: exitAnswer, err: fmt.Errorf("%s %w (nothing was sent)", path, err)}
	}
	unlock, err := lockProgress(o.progFile)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer unlock()
	abs, _ := filepath.Abs(path)
	prog := importProgress{File: abs, Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	if !o.restart {
		if old, ok := readProgress(o.progFile); ok && old.File == prog.File && old.Size == prog.Size && old.ModTime == prog.ModTime {
			prog = old
			fmt.Fprintf(a.stderr, "resuming %s at line %d (%d commands answered before)\n", path, prog.Line+1, prog.Commands)
		}
	}
	if _, err := f.Seek(prog.Offset, io.SeekStart); err != nil {
		return &exitError{code: exitAnswer, err: err}
	}
	lines := &lineReader{r: bufio.NewReaderSize(f, 1<<20), offset: prog.Offset, line: prog.Line}
	var src importSource = &commandLines{lines: lines}
	switch format {
	case formatExport:
		src = &exportCommands{events: &exportLines{lines: lines}, actor: o.actor}
	case formatExportCSV:
		src = &exportCommands{events: newExportCSV(f, prog.Offset, prog.Line), actor: o.actor}
	}
	nc, err := a.conn()
	if err != nil {
		return err
	}
	client := commands.NewClientWatching(nc, a.violations)
	if err := checkResume(ctx, client, prog.Witness, a.stderr); err != nil {
		return err
	}
	bar := newImportBar(a.stderr, st.Size(), prog.Offset)
	start, startCmds := time.Now(), prog.Commands

	batch := client.Batch
	if o.hold {
		batch = client.BatchLoad
	}
	record := func(b *pendingBatch, out []commands.BatchOutcome, err error) error {
		if err != nil {
			return importError(err, fmt.Sprintf("lines %d-%d", b.first, b.last))
		}
		// The progress file keeps the last batch answered whole: a run resumed after a refusal
		// sends this batch again, and its commands stored before the refusal answer as before.
		for i, o := range out {
			if o.Err != nil {
				return importError(o.Err, b.items[i].where())
			}
			prog.Seq = max(prog.Seq, o.Result.Seq)
		}
		if len(out) < len(b.cmds) {
			return &exitError{code: exitAnswer, err: fmt.Errorf("lines %d-%d: the service answered %d of %d commands", b.first, b.last, len(out), len(b.cmds))}
		}
		prog.Offset, prog.Line, prog.Commands = b.end, b.last, prog.Commands+len(b.cmds)
		prog.Witness = witnessOf(prog.Witness, b, out)
		if err := writeProgress(o.progFile, prog); err != nil {
			return &exitError{code: exitAnswer, err: err}
		}
		bar.set(prog.Offset, prog.Commands)
		return nil
	}
	// Up to o.pipeline batches are in flight (commands.Pipeline): acld decides the next one
	// while the one before takes the store's last answers and its answer comes back. The
	// answers are taken in order. A batch without an answer is sent again alone, and so are
	// the ones after it (their commands may have been decided without it).
	// alone sends a batch and waits for its answer; an acld from before round 10 takes at
	// most commands.MaxOldBatch commands a batch (it refuses a longer one whole): the batches
	// are then cut to that.
	limit := commands.MaxBatch
	var alone func(b *pendingBatch) error
	alone = func(b *pendingBatch) error {
		if len(b.cmds) > limit {
			for _, part := range b.split(limit) {
				if err := alone(part); err != nil {
					return err
				}
			}
			return nil
		}
		out, err := batch(ctx, b.tenant, b.cmds)
		if oldLimit(err) && len(b.cmds) > commands.MaxOldBatch {
			limit = commands.MaxOldBatch
			return alone(b)
		}
		return record(b, out, err)
	}
	pipe := client.Pipeline(o.hold)
	type inFlight struct {
		b  *pendingBatch
		pb *commands.PendingBatch
	}
	var queue []inFlight
	take := func() error {
		f := queue[0]
		queue = queue[1:]
		out, err := f.pb.Wait()
		if oldService(err) || oldLimit(err) || strings.Contains(errorMessage(err), commands.PipeElsewhere) {
			// An acld from before pipes, or several behind one subject: one batch at a time
			// (nothing of the batch was carried out).
			o.pipeline = 1
		} else if aggregates.ErrorCode(err) != aggregates.CodeUnavailable {
			return record(f.b, out, err)
		}
		again := []*pendingBatch{f.b}
		for _, g := range queue {
			g.pb.Wait() //nolint:errcheck // sent again below
			again = append(again, g.b)
		}
		queue = nil
		pipe = client.Pipeline(o.hold)
		for _, b := range again {
			if err := alone(b); err != nil {
				return err
			}
		}
		return nil
	}
	send := func(b *pendingBatch) error {
		if len(b.cmds) == 0 {
			return nil
		}
		if o.pipeline <= 1 {
			return alone(b)
		}
		queue = append(queue, inFlight{b: b, pb: pipe.Send(ctx, b.tenant, b.cmds)})
		for len(queue) >= o.pipeline {
			if err := take(); err != nil {
				return err
			}
		}
		return nil
	}
	drain := func() error {
		for len(queue) > 0 {
			if err := take(); err != nil {
				return err
			}
		}
		return nil
	}

	// The file is read and the next batch gathered while the one before is in flight: the
	// service waits only for the answer to go back and the next request to come, not for this
	// process to read, parse and encode a thousand lines on a machine it shares.
	// The reader stops when this returns, not at ctx's end: then the batch being sent answers
	// unavailable, as it would without a reader ahead.
	gctx, stop := context.WithCancel(context.Background())
	defer stop()
	for g := range gatherBatches(gctx, src, o.batch) {
		if err := send(g.batch); err != nil {
			return err
		}
		if g.err != nil {
			if err := drain(); err != nil {
				return err
			}
		}
		if err := g.err; err != nil {
			if errors.Is(err, errReadFile) {
				return &exitError{code: exitAnswer, err: err}
			}
			return &exitError{code: exitAnswer, err: fmt.Errorf("%s %w (nothing of it was sent)", path, err)}
		}
	}
	if err := drain(); err != nil {
		return err
	}
	bar.finish()
	os.Remove(o.progFile)
	n := prog.Commands - startCmds
	d := time.Since(start)
	fmt.Fprintf(a.stderr, "imported %d commands in %s (%.0f/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	fmt.Fprintln(a.stdout, prog.Seq)
	return nil
}

// gathered is a batch ready to send, and with the last one the error that ended the file, if
// any (after the batch of the lines before it).
type gathered struct {
	batch *pendingBatch
	err   error
}

// gatherBatches reads src into batches of up to size commands of one tenant (and at most
// maxBatchBytes), one ahead of the sender, until the end of the file or an error (the last
// item, with the batch of the lines before it); it stops early when ctx ends.
func gatherBatches(ctx context.Context, src importSource, size int) <-chan gathered {
	out := make(chan gathered, 1)
	go func() {
		defer close(out)
		put := func(g gathered) bool {
			select {
			case out <- g:
				return true
			case <-ctx.Done():
				return false
			}
		}
		b := &pendingBatch{}
		for {
			it, err := src.next()
			if err != nil || it == nil {
				put(gathered{batch: b, err: err})
				return
			}
			if b.tenant != it.tenant || len(b.cmds) == size || b.bytes+it.size > maxBatchBytes {
				if !put(gathered{batch: b}) {
					return
				}
				b = &pendingBatch{tenant: it.tenant, first: it.first}
			}
			b.cmds = append(b.cmds, commands.BatchCommand{Command: it.command, Body: it.body})
			b.items = append(b.items, importItem{command: it.command, first: it.first, last: it.last, end: it.end})
			b.bytes += it.size
			b.last, b.end = it.last, it.end
		}
	}()
	return out
}

// errReadFile marks an error reading the file (not its content).
var errReadFile = errors.New("read")

// lineReader reads a file line by line from an offset, counting lines.
type lineReader struct {
	r      *bufio.Reader
	offset int64 // after the last line read
	line   int   // the number of the last line read
}

// read returns the next line that is not blank, with its number; nil at the end.
func (l *lineReader) read() ([]byte, error) {
	for {
		raw, err := l.r.ReadBytes('\n')
		if len(raw) > 0 {
			l.line++
			l.offset += int64(len(raw))
			if len(bytes.TrimSpace(raw)) > 0 {
				return raw, nil
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errReadFile, err)
		}
	}
}

// commandLines is the source of a file of commands: one per line.
type commandLines struct{ lines *lineReader }

func (c *commandLines) next() (*importItem, error) {
	raw, err := c.lines.read()
	if raw == nil || err != nil {
		return nil, err
	}
	l, err := parseImportLine(raw)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", c.lines.line, err)
	}
	return &importItem{tenant: l.Tenant, command: l.Command, body: l.Body, first: c.lines.line, last: c.lines.line,
		end: c.lines.offset, size: len(raw)}, nil
}

// parseImportLine reads one line that is not blank.
func parseImportLine(raw []byte) (*importLine, error) {
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

// oldService reports the refusal of a pipelined batch by an acld from before pipes, which
// refuses the body's fields pipe and seq (and writes nothing of the batch).
func oldService(err error) bool { return refusedField(err, "pipe") }

// refusedField reports a batch request refused whole by an acld that does not know the body's
// field (its strict decoding: invalid_argument, "unknown field").
func refusedField(err error, field string) bool {
	var e *aggregates.Error
	return errors.As(err, &e) && e.Code == aggregates.CodeInvalidArgument && e.Op == commands.BatchName &&
		strings.Contains(e.Message, "unknown field") && strings.Contains(e.Message, field)
}

// oldLimit reports a batch refused whole for its length by an acld from before round 10.
func oldLimit(err error) bool {
	var e *aggregates.Error
	return errors.As(err, &e) && e.Code == aggregates.CodeInvalidArgument && e.Op == commands.BatchName &&
		strings.Contains(e.Message, fmt.Sprintf("at most %d commands", commands.MaxOldBatch))
}

// split cuts the batch into batches of at most n commands.
func (b *pendingBatch) split(n int) []*pendingBatch {
	var parts []*pendingBatch
	for start := 0; start < len(b.cmds); start += n {
		end := min(start+n, len(b.cmds))
		items := b.items[start:end]
		parts = append(parts, &pendingBatch{tenant: b.tenant, cmds: b.cmds[start:end], items: items,
			first: items[0].first, last: items[len(items)-1].last, end: items[len(items)-1].end})
	}
	return parts
}

// errorMessage is the message of an *aggregates.Error, or "".
func errorMessage(err error) string {
	var e *aggregates.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
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
