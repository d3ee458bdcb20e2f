package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run of the tool: what it ran on and every result. It is the JSON that --out
// writes and compare reads; fields are only ever added, so old files stay comparable.
type Report struct {
	Tool     string    `json:"tool"`
	Version  int       `json:"version"`
	Started  time.Time `json:"started"`
	Host     Host      `json:"host"`
	Args     []string  `json:"args"`
	Dataset  *DataInfo `json:"dataset,omitempty"`
	Results  []Result  `json:"results"`
	Profiles []string  `json:"profiles,omitempty"` // pprof files written
}

// Host is what the figures depend on besides the code.
type Host struct {
	CPUs      int    `json:"cpus"`
	GOMAXPROC int    `json:"gomaxprocs"`
	Go        string `json:"go"`
	OS        string `json:"os"`
	Target    string `json:"target"` // "in-process" or the URLs of a running acld
}

// DataInfo describes the data set a run worked on.
type DataInfo struct {
	Seed       uint64   `json:"seed"`
	Tenants    []string `json:"tenants"`
	Presets    []string `json:"presets"`
	Records    int      `json:"records"`
	Clients    int      `json:"clients"`
	Principals int      `json:"principals"`
	Units      int      `json:"units"`
	Messages   uint64   `json:"messages"` // stream messages when the workloads started
	Events     uint64   `json:"events,omitempty"`
	LoadPath   string   `json:"load_path"` // "fast", "commands" or "existing"
}

// Result is one measured workload (or variant of one).
type Result struct {
	Workload   string           `json:"workload"`
	Variant    string           `json:"variant,omitempty"`
	Records    int              `json:"records"`
	Principals int              `json:"principals"`
	Ops        int64            `json:"ops"`
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"throughput"`
	Unit       string           `json:"unit"`
	Latency    *Latency         `json:"latency_us,omitempty"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Memory     Memory           `json:"memory"`
	Aims       []AimCheck       `json:"aims,omitempty"`
	Notes      []string         `json:"notes,omitempty"`
	Extra      map[string]any   `json:"extra,omitempty"`
}

func newReport(args []string, target string) *Report {
	return &Report{Tool: "aclbench", Version: 1, Started: time.Now().UTC(), Args: args,
		Host: Host{CPUs: runtime.NumCPU(), GOMAXPROC: runtime.GOMAXPROCS(0), Go: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH, Target: target}}
}

// resultOf turns a drive's outcome into a result, with the memory as it is now.
func resultOf(workload, variant, unit string, o outcome, scale Scale) Result {
	r := Result{Workload: workload, Variant: variant, Records: scale.Records, Principals: scale.Principals,
		Ops: o.ops, Seconds: round3(o.elapsed.Seconds()), Throughput: round3(o.throughput()), Unit: unit,
		Latency: o.hist.summary(), Memory: readMemory()}
	if len(o.errors) > 0 {
		r.Errors = o.errors
		if o.lastErr != nil {
			r.Notes = append(r.Notes, "last error: "+truncate(o.lastErr.Error(), 200))
		}
	}
	r.Aims = checkAims(r)
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// write saves the report as indented JSON.
func (r *Report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// printTable writes the results as the table the report to the lead uses.
func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tvariant\trecords\tthroughput\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\tRSS MB\theap MB\tload\terrors\taims\t")
	for _, r := range rs {
		l := r.Latency
		if l == nil {
			l = &Latency{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.1f\t%s\t%s\t\n",
			r.Workload, r.Variant, r.Records, fmtRate(r.Throughput, r.Unit),
			fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max),
			r.Memory.RSSMB, r.Memory.HeapMB, r.Memory.LoadAvg, fmtErrors(r.Errors), fmtAims(r.Aims))
	}
	tw.Flush()
	for _, r := range rs {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s/%s: %s\n", r.Workload, r.Variant, n)
		}
	}
}

func fmtRate(v float64, unit string) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk %s", v/1e3, unit)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func fmtUS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 10_000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func fmtErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}
