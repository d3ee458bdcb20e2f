package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// options are the flags of run and scale.
type options struct {
	seed            uint64
	scale           Scale
	load            string // fast, commands, none
	loadConcurrency int
	loadConns       int
	dataDir         string
	keep            bool
	natsURL         string
	httpURL         string
	sync            string
	duration        time.Duration
	warmup          time.Duration
	clients         []int // commands workload
	workers         int   // query workloads: concurrent callers
	httpConns       int
	natsConns       int
	via             string // inprocess, http, nats: how visible, principals and ryw ask
	out             string
	profileDir      string
	checkpointEvery uint64
	cacheMB         int
	run             string // tells runs apart in new ids
	quiet           bool
}

// bench is one invocation of run: a data set on a server, the workloads run against it, and
// their results.
type bench struct {
	opt    options
	ds     *Dataset
	st     *stack
	rep    *Report
	log    *slog.Logger
	w      io.Writer // the human-readable output
	info   *DataInfo
	tmpDir string // removed at the end unless --keep
	// needReplay: a selected workload needs the replay service, which must start with the
	// read side (before the projector catches up) to take its checkpoints.
	needReplay bool
}

func newBench(opt options, w io.Writer, args []string) (*bench, error) {
	ds, err := NewDataset(opt.seed, opt.scale)
	if err != nil {
		return nil, err
	}
	target := "in-process"
	if opt.natsURL != "" || opt.httpURL != "" {
		target = strings.TrimSpace(opt.natsURL + " " + opt.httpURL)
	}
	level := slog.LevelWarn
	b := &bench{opt: opt, ds: ds, w: w, rep: newReport(args, target),
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	if opt.run == "" {
		b.opt.run = "r" + strings.ToLower(fmt.Sprintf("%x", time.Now().Unix()))
	}
	return b, nil
}

// open starts the server (or connects to the running one) on the data directory.
func (b *bench) open(ctx context.Context) error {
	dir := b.opt.dataDir
	if dir == "" && b.opt.natsURL == "" {
		d, err := os.MkdirTemp("", "aclbench-")
		if err != nil {
			return err
		}
		dir, b.tmpDir = d, d
	}
	st, err := openStack(ctx, stackConfig{dir: dir, sync: b.opt.sync, natsURL: b.opt.natsURL,
		cacheMB: b.opt.cacheMB, checkpointEvery: b.opt.checkpointEvery, log: b.log})
	if err != nil {
		return err
	}
	b.st = st
	return nil
}

func (b *bench) close() {
	if b.st != nil {
		b.st.close()
	}
	if b.tmpDir != "" && !b.opt.keep {
		os.RemoveAll(b.tmpDir)
	} else if b.tmpDir != "" {
		fmt.Fprintf(b.w, "data kept in %s\n", b.tmpDir)
	}
}

// datasetMarker records, in the data directory, which data set it holds, so that a later run
// with --data and the same seed and scale uses it instead of loading again.
const datasetMarker = "aclbench-dataset.json"

type markerFile struct {
	Seed  uint64    `json:"seed"`
	Scale Scale     `json:"scale"`
	Info  *DataInfo `json:"info"`
}

func (b *bench) loadedBefore() *DataInfo {
	if b.st.remote() {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(b.st.cfg.dir, datasetMarker))
	if err != nil {
		return nil
	}
	var m markerFile
	if json.Unmarshal(raw, &m) != nil || m.Seed != b.ds.Seed || !sameScale(m.Scale, b.ds.Scale) {
		return nil
	}
	return m.Info
}

func sameScale(a, b Scale) bool {
	return a.Records == b.Records && a.Principals == b.Principals && a.Tenants == b.Tenants &&
		strings.Join(a.Presets, ",") == strings.Join(b.Presets, ",") && a.Prefix == b.Prefix
}

// load puts the data set in the store, by the path asked, unless the data directory has it.
func (b *bench) load(ctx context.Context) error {
	info := &DataInfo{Seed: b.ds.Seed, Records: b.ds.Scale.Records, Principals: b.ds.Scale.Principals, LoadPath: b.opt.load}
	for _, t := range b.ds.Tenants {
		info.Tenants = append(info.Tenants, t.ID)
		info.Presets = append(info.Presets, t.Preset)
		info.Clients += t.Clients
		info.Units += t.Locations + t.Teams + t.Areas
	}
	if prev := b.loadedBefore(); prev != nil {
		fmt.Fprintf(b.w, "data set already in %s (%d messages)\n", b.st.cfg.dir, prev.Messages)
		prev.LoadPath = "existing"
		b.info, b.rep.Dataset = prev, prev
		return nil
	}
	fmt.Fprintf(b.w, "loading %s by the %s path\n", b.ds, b.opt.load)
	total := 0
	for _, t := range b.ds.Tenants {
		total += t.CommandCount()
	}
	p := newProgress(os.Stderr, "load "+b.opt.load, int64(total), b.opt.quiet)
	defer p.finish()
	before := readMemory()
	start := time.Now()
	var res []Result
	switch b.opt.load {
	case "fast":
		l, err := newFastLoader(b.st)
		if err != nil {
			return err
		}
		for _, t := range b.ds.Tenants {
			if err := l.loadTenant(ctx, t, p.add); err != nil {
				return fmt.Errorf("fast load of %s: %w", t.ID, err)
			}
		}
		el := time.Since(start)
		info.Events = uint64(l.events.Load())
		r := Result{Workload: "load", Variant: "fast", Records: b.ds.Scale.Records, Principals: b.ds.Scale.Principals,
			Ops: l.events.Load(), Seconds: round3(el.Seconds()), Throughput: round3(float64(l.events.Load()) / el.Seconds()), Unit: "events/s",
			Memory: readMemory(), Extra: map[string]any{"messages": l.msgs.Load(), "commands": p.done}}
		res = append(res, r)
	case "commands":
		l, err := newCommandLoader(b.st, b.opt.loadConns, b.opt.loadConcurrency)
		if err != nil {
			return err
		}
		for _, t := range b.ds.Tenants {
			if err := l.loadTenant(ctx, t, p.add); err != nil {
				return fmt.Errorf("command load of %s: %w", t.ID, err)
			}
		}
		for _, name := range []string{phaseUnits, phaseClients, phasePrincipals, phaseRecords} {
			st := l.phases[name]
			if st == nil || st.ops == 0 {
				continue
			}
			o := outcome{ops: st.ops, elapsed: st.elapsed, hist: st.hist}
			r := resultOf("load", fmt.Sprintf("commands/%s/concurrency=%d", name, b.opt.loadConcurrency), "commands/s", o, b.ds.Scale)
			res = append(res, r)
		}
	case "none":
		info.LoadPath = "none"
	default:
		return fmt.Errorf("--load %q: want fast, commands or none", b.opt.load)
	}
	last, err := b.st.store.LastSeq(ctx)
	if err != nil {
		return err
	}
	info.Messages = last
	b.info, b.rep.Dataset = info, info
	for i := range res {
		res[i].Notes = append(res[i].Notes, fmt.Sprintf("heap before load %.0f MB", before.HeapMB))
	}
	b.add(res...)
	if !b.st.remote() && b.opt.load != "none" {
		raw, _ := json.Marshal(markerFile{Seed: b.ds.Seed, Scale: b.ds.Scale, Info: info})
		if err := os.WriteFile(filepath.Join(b.st.cfg.dir, datasetMarker), raw, 0o644); err != nil {
			return err
		}
	}
	// What the loader kept (the fast path's facts) is garbage now: the workloads' memory
	// figures must not carry it.
	runtime.GC()
	return nil
}

// add records results and prints them as they come.
func (b *bench) add(rs ...Result) {
	b.rep.Results = append(b.rep.Results, rs...)
	if len(rs) > 0 {
		printTable(b.w, rs)
	}
}

// scaleOf is the scale results are reported at.
func (b *bench) scaleOf() Scale { return b.ds.Scale }

// serverMemory puts a running acld's memory (from its /metrics) in results measured against
// it: the tool's own would say nothing about the server.
func (b *bench) serverMemory(rs []Result) {
	if !b.st.remote() || b.opt.httpURL == "" {
		return
	}
	m, ok := serverMemory(b.opt.httpURL)
	if !ok {
		return
	}
	for i := range rs {
		rs[i].Memory = m
		rs[i].Notes = append(rs[i].Notes, "memory: the server's, from its /metrics")
		rs[i].Aims = checkAims(rs[i])
	}
}
