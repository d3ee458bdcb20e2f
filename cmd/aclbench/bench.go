package main

import (
	"context"
	"fmt"
	"github.com/nats-io/nats.go"
	"io"
	"log/slog"
	"os"
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
	token           string // bearer token for --http-url (acld --auth)
	natsUser        string // credentials for --nats-url (acld --auth)
	natsPassword    string
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
	memoryIdle      time.Duration // the memory workload waits this long first (--memory-idle)
	rywLink         bool          // ryw assigns the record the probe record links to (--ryw-link)
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
	var natsOpts []nats.Option
	if b.opt.natsUser != "" {
		natsOpts = append(natsOpts, nats.UserInfo(b.opt.natsUser, b.opt.natsPassword))
	}
	st, err := openStack(ctx, stackConfig{dir: dir, sync: b.opt.sync, natsURL: b.opt.natsURL, natsOpts: natsOpts,
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
