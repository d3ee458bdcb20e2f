package replay

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ExportColumns are the CSV columns of an audit export (aclctl export, the console's export
// links), one row per event of a history.
var ExportColumns = []string{"seq", "time", "tenant", "aggregate_kind", "aggregate_type", "aggregate_id",
	"event", "schema", "actor", "via", "command_id", "cause", "event_id", "why", "data"}

// ExportFormats are the formats an Exporter writes.
var ExportFormats = []string{"jsonl", "csv"}

// Exporter writes the events of a history as JSON lines (one envelope with its seq and why per
// line) or CSV (ExportColumns).
type Exporter struct {
	json *json.Encoder
	csv  *csv.Writer
}

// NewExporter returns an exporter writing format ("jsonl" or "csv") to w; a CSV starts with its
// header.
func NewExporter(w io.Writer, format string) (*Exporter, error) {
	switch format {
	case "csv":
		c := csv.NewWriter(w)
		c.Write(ExportColumns) //nolint:errcheck // reported by Flush
		return &Exporter{csv: c}, nil
	case "jsonl":
		return &Exporter{json: json.NewEncoder(w)}, nil
	}
	return nil, invalidf("export format %q: jsonl or csv", format)
}

// Write writes one event.
func (x *Exporter) Write(e HistoryEvent) error {
	if x.json != nil {
		return x.json.Encode(e)
	}
	return x.csv.Write([]string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Tenant,
		e.Aggregate.Kind, e.Aggregate.Type, e.Aggregate.ID, e.Type, strconv.Itoa(e.Schema), e.Actor,
		e.Via, e.CommandID, e.Cause, e.ID, e.Why, string(e.Data)})
}

// Flush writes what is buffered and reports the first error of the CSV writer.
func (x *Exporter) Flush() error {
	if x.csv == nil {
		return nil
	}
	x.csv.Flush()
	if err := x.csv.Error(); err != nil {
		return fmt.Errorf("replay: export: %w", err)
	}
	return nil
}
