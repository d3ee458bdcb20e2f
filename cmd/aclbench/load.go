package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

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
	// figures must not carry it, so collect it and give the pages back to the OS.
	debug.FreeOSMemory()
	return nil
}
