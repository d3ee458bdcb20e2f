package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// startProfile starts a CPU profile of one workload when --profile is set; the returned function
// stops it and writes a heap profile next to it. Files: <dir>/<workload>.cpu.pprof and
// <workload>.heap.pprof (read them with go tool pprof -top).
func (b *bench) startProfile(name string) (func(), error) {
	if b.opt.profileDir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(b.opt.profileDir, 0o755); err != nil {
		return nil, err
	}
	cpuPath := filepath.Join(b.opt.profileDir, name+".cpu.pprof")
	f, err := os.Create(cpuPath)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		heapPath := filepath.Join(b.opt.profileDir, name+".heap.pprof")
		if h, err := os.Create(heapPath); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(h)
			h.Close()
		}
		b.rep.Profiles = append(b.rep.Profiles, cpuPath, heapPath)
	}, nil
}
