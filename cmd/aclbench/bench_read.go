package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// readSide makes the read side answer. In-process it starts the projector (and, when a selected
// workload needs as_of, the replay service before it, so that checkpoints are taken as the
// projector advances) and waits until the read model has caught up with the stream. Against a
// running acld it does nothing: that server's read side is its own.
func (b *bench) readSide(ctx context.Context) error {
	if b.st.remote() || b.st.proj != nil {
		return nil
	}
	start := time.Now()
	if err := b.st.startReadSide(ctx, b.needReplay); err != nil {
		return err
	}
	from := b.st.proj.Applied()
	last, err := b.st.caughtUp(ctx)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(b.w, "read model caught up with %d messages in %.1fs (%.0f msgs/s%s)\n", last-from, el.Seconds(),
		float64(last-from)/el.Seconds(), map[bool]string{true: ", with the audit index and checkpoints", false: ""}[b.needReplay])
	if last-from >= catchUpCompaction {
		// As acld does after a long catch-up: until then every point read visits each level-0
		// table.
		t := time.Now()
		if err := b.st.db.Compact(ctx); err != nil {
			return err
		}
		fmt.Fprintf(b.w, "read model compacted in %.1fs\n", time.Since(t).Seconds())
	}
	if b.st.replay != nil {
		if err := b.replayCaughtUp(ctx, last, start); err != nil {
			return err
		}
	}
	b.settle(ctx)
	return nil
}

// replayCaughtUp waits for the replay service's background work after a catch-up.
func (b *bench) replayCaughtUp(ctx context.Context, last uint64, start time.Time) error {
	// The audit index follows the stream on its own, and the checkpoints the catch-up skipped
	// are back-filled in the background: both compete with whatever is measured next, so wait.
	audit := b.st.replay.Audit()
	caughtUp := func() bool { return audit.Applied() >= last && b.st.replay.CheckpointsCaughtUp() }
	if !waitFor(ctx, 30*time.Minute, caughtUp) {
		return fmt.Errorf("replay did not catch up: audit index at %d of %d", audit.Applied(), last)
	}
	fmt.Fprintf(b.w, "audit index and checkpoints caught up after %.1fs\n", time.Since(start).Seconds())
	return nil
}

// querier returns the way to ask queries (inprocess, http, nats) and what to call when done.
func (b *bench) querier(ctx context.Context, via string) (querier, func(), error) {
	nop := func() {}
	switch via {
	case "inprocess":
		if b.st.remote() {
			return nil, nil, errors.New("in-process queries need the in-process server; against a running acld use --via http or nats")
		}
		if err := b.readSide(ctx); err != nil {
			return nil, nil, err
		}
		return engineQuerier{b.st.engine}, nop, nil
	case "http":
		url := b.opt.httpURL
		if url == "" {
			if b.st.remote() {
				return nil, nil, errors.New("queries over HTTP to a running acld need --http-url")
			}
			if err := b.readSide(ctx); err != nil {
				return nil, nil, err
			}
			var err error
			if url, err = b.st.startQueryServers(ctx); err != nil {
				return nil, nil, err
			}
		}
		h := newHTTPQuerier(url, max(b.opt.httpConns, b.workersFor(via)), b.opt.token)
		return h, h.close, nil
	case "nats":
		if !b.st.remote() {
			if err := b.readSide(ctx); err != nil {
				return nil, nil, err
			}
			if _, err := b.st.startQueryServers(ctx); err != nil {
				return nil, nil, err
			}
		}
		var conns []*nats.Conn
		for range max(b.opt.natsConns, 1) {
			nc, err := b.st.connect()
			if err != nil {
				return nil, nil, err
			}
			conns = append(conns, nc)
		}
		return newNATSQuerier(conns), nop, nil
	}
	return nil, nil, fmt.Errorf("--via %q: want inprocess, http or nats", via)
}

// settle waits until the process is nearly idle (under 10 % of a core for two seconds in a
// row, at most settleMax): after a catch-up Pebble compacts what it just wrote, and queries
// measured meanwhile would measure the compactions. What it waited is printed, and is itself a
// figure: how long the server is busy after catching up.
func (b *bench) settle(ctx context.Context) {
	start := time.Now()
	prev, ok := cpuTicks()
	if !ok {
		return
	}
	quiet := 0
	for quiet < 4 && time.Since(start) < settleMax && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		now, _ := cpuTicks()
		if now-prev <= 5 { // 5 ticks of 1/100 s in 0.5 s: 10 % of a core
			quiet++
		} else {
			quiet = 0
		}
		prev = now
	}
	fmt.Fprintf(b.w, "settled (background work done) after %.1fs\n", time.Since(start).Seconds())
}

// catchUpCompaction is acld's: a catch-up of more messages than this is followed by a compaction.
const catchUpCompaction = 100_000

// settleMax bounds the wait for the background work after a catch-up.
const settleMax = 3 * time.Minute
