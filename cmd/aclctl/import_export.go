package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

// The formats of an import file: --format auto finds one of the others from the first line;
// export is JSON lines or CSV, told apart the same way.
const (
	formatAuto      = "auto"
	formatCommands  = "commands"
	formatExport    = "export"
	formatExportCSV = "export-csv" // found, never asked for
)

var importFormats = []string{formatAuto, formatCommands, formatExport}

// detectFormat reads the first line that is not blank and says what the file holds: commands,
// an export as JSON lines, or an export as CSV (its header). want is --format.
func detectFormat(r io.Reader, want string) (string, error) {
	if want == formatCommands {
		return formatCommands, nil // every line is checked as a command anyway
	}
	lines := &lineReader{r: bufio.NewReader(r)}
	raw, err := lines.read()
	if err != nil {
		return "", err
	}
	if raw == nil {
		return formatCommands, nil // nothing to import
	}
	got := ""
	var keys map[string]json.RawMessage
	switch {
	case string(bytes.TrimRight(raw, "\r\n")) == strings.Join(replay.ExportColumns, ","):
		got = formatExportCSV
	case json.Unmarshal(raw, &keys) != nil:
	case keys["command"] != nil && keys["body"] != nil:
		got = formatCommands
	case keys["type"] != nil && keys["aggregate"] != nil && keys["command_id"] != nil:
		got = formatExport
	}
	switch {
	case got == "":
		return "", fmt.Errorf("line %d: %s: neither a command {\"tenant\",\"command\",\"body\"} nor an exported event (aclctl export: JSON lines, or CSV with its header)",
			lines.line, aggregates.CodeInvalidArgument)
	case want == formatExport && got == formatCommands:
		return "", fmt.Errorf("line %d: %s: --format export, but this is a command, not an exported event", lines.line, aggregates.CodeInvalidArgument)
	}
	return got, nil
}

// exportEvent is one event of an export and where it is in the file.
type exportEvent struct {
	env         events.Envelope
	first, last int   // its lines
	end         int64 // file offset after it
}

// eventSource yields an export's events in order: nil at the end. Its errors name the line.
type eventSource interface {
	next() (*exportEvent, error)
}

// exportLines reads an export of JSON lines: one envelope (with seq and why) per line.
type exportLines struct{ lines *lineReader }

func (x *exportLines) next() (*exportEvent, error) {
	raw, err := x.lines.read()
	if raw == nil || err != nil {
		return nil, err
	}
	var h aggregates.HistoryEvent
	if derr := aggregates.DecodeStrict("event", raw, &h); derr != nil {
		return nil, fmt.Errorf("line %d: %w", x.lines.line, derr)
	}
	if err := validEvent(h.Envelope); err != nil {
		return nil, fmt.Errorf("line %d: %w", x.lines.line, err)
	}
	return &exportEvent{env: h.Envelope, first: x.lines.line, last: x.lines.line, end: x.lines.offset}, nil
}

// validEvent is the check of an event read from a file: every field an event has, data its
// type can decode.
func validEvent(e events.Envelope) error {
	if err := e.Validate(); err != nil {
		return &aggregates.Error{Code: aggregates.CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	return nil
}

// exportCSV reads an export in CSV: the header, then one event per row (replay.ExportColumns).
type exportCSV struct {
	r      *csv.Reader
	base   int64 // file offset where the reader starts
	lines  int   // lines before it
	header bool  // the header is still to read
}

func newExportCSV(r io.Reader, offset int64, line int) *exportCSV {
	c := csv.NewReader(r)
	c.FieldsPerRecord = len(replay.ExportColumns)
	return &exportCSV{r: c, base: offset, lines: line, header: offset == 0}
}

func (x *exportCSV) next() (*exportEvent, error) {
	row, err := x.r.Read()
	if err == io.EOF {
		return nil, nil
	}
	if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
		return nil, fmt.Errorf("line %d: %s: %w", x.lines+pe.StartLine, aggregates.CodeInvalidArgument, pe.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errReadFile, err)
	}
	first, _ := x.r.FieldPos(0)
	last, _ := x.r.FieldPos(len(row) - 1)
	first, last = first+x.lines, last+x.lines
	if x.header {
		x.header = false
		if !slices.Equal(row, replay.ExportColumns) {
			return nil, fmt.Errorf("line %d: %s: the header is not aclctl export's %v", first, aggregates.CodeInvalidArgument, replay.ExportColumns)
		}
		return x.next()
	}
	env, err := envelopeOfRow(row)
	if err == nil {
		err = validEvent(env)
	}
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", first, err)
	}
	return &exportEvent{env: env, first: first, last: last, end: x.base + x.r.InputOffset()}, nil
}

// envelopeOfRow reads a CSV row of replay.ExportColumns.
func envelopeOfRow(row []string) (events.Envelope, error) {
	col := func(name string) string { return row[slices.Index(replay.ExportColumns, name)] }
	bad := func(name string, err error) error {
		return &aggregates.Error{Code: aggregates.CodeInvalidArgument, Message: fmt.Sprintf("column %s %q: %v", name, col(name), err)}
	}
	t, err := time.Parse(time.RFC3339Nano, col("time"))
	if err != nil {
		return events.Envelope{}, bad("time", err)
	}
	schema, err := strconv.Atoi(col("schema"))
	if err != nil {
		return events.Envelope{}, bad("schema", err)
	}
	seq, err := strconv.ParseUint(col("seq"), 10, 64)
	if err != nil {
		return events.Envelope{}, bad("seq", err)
	}
	agg := events.AggregateRef{Kind: col("aggregate_kind"), Type: col("aggregate_type"), ID: col("aggregate_id")}
	return events.Envelope{ID: col("event_id"), Type: col("event"), Schema: schema, Tenant: col("tenant"), Aggregate: agg,
		Actor: col("actor"), Via: col("via"), CommandID: col("command_id"), Cause: col("cause"), Time: t,
		Data: json.RawMessage(col("data")), Seq: seq}, nil
}

// exportCommands is the source of an export: the events of each command (adjacent events with
// one command id: a command's messages are appended together) turned back into the command
// (aggregates.CommandOf), which the service decides again with every guard.
type exportCommands struct {
	events   eventSource
	actor    string       // replaces the recorded actor when set
	ahead    *exportEvent // the first event of the next command, read to see this one end
	aheadErr error        // the error of the line after this command, returned next time
}

func (x *exportCommands) next() (*importItem, error) {
	first, err := x.ahead, x.aheadErr
	x.ahead, x.aheadErr = nil, nil
	if first == nil && err == nil {
		first, err = x.events.next()
	}
	if first == nil || err != nil {
		return nil, err
	}
	group, last := []events.Envelope{first.env}, first
	for {
		e, err := x.events.next()
		if e == nil || err != nil || e.env.CommandID != first.env.CommandID {
			x.ahead, x.aheadErr = e, err
			break
		}
		group, last = append(group, e.env), e
	}
	it := &importItem{first: first.first, last: last.last, end: last.end}
	cmd, err := aggregates.CommandOf(group)
	if err != nil {
		it.command = "events " + strings.Join(eventTypes(group), ", ")
		return nil, fmt.Errorf("%s: %w", it.where(), err)
	}
	if x.actor != "" {
		cmd.Base().Actor = x.actor
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.where(), err)
	}
	it.tenant, it.command, it.body, it.size = cmd.Base().Tenant, cmd.Name(), body, len(body)+len(`{"command":"","body":},`)+len(cmd.Name())
	return it, nil
}

func eventTypes(evs []events.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}
