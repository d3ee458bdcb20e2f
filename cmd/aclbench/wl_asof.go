package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
	"github.com/acl-es/acl/replay"
)

// asofMoments is how many distinct moments an as_of run asks about.
const asofMoments = 4096

// runAsOf measures as_of: replay.Service.AsOf at a random stream sequence (a copy of the nearest
// checkpoint and the events after it replayed), then one check on the engine it returns. Random
// moments rarely repeat, so the replay's small state cache seldom helps: this is the cost of an
// auditor's first question about a moment. In-process only.
func runAsOf(ctx context.Context, b *bench) ([]Result, error) {
	if b.st.remote() {
		return nil, errors.New("asof runs in-process (it measures the replay package directly)")
	}
	if err := b.readSide(ctx); err != nil {
		return nil, err
	}
	rs := b.st.replay
	if rs == nil {
		return nil, errors.New("asof: the replay service was not started with the read side")
	}
	last, err := b.st.store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	replayDir := filepath.Join(b.st.cfg.dir, "replay")
	ckpts := checkpointSeqs(filepath.Join(replayDir, "checkpoints"))
	// Each question is about a tenant at a moment after it was created.
	type question struct {
		tenant string
		seq    uint64
	}
	var qs []question
	for k, t := range b.ds.Tenants {
		first, err := b.st.firstSeq(ctx, tenantSubject(t.ID))
		if err != nil {
			return nil, err
		}
		if first == 0 {
			return nil, fmt.Errorf("asof: tenant %s has no events", t.ID)
		}
		// CreateTenant's batch: the tenant, then its administrator (whom the check asks about).
		admin := first + 1
		for i := range asofMoments / len(b.ds.Tenants) {
			r := rngFor(b.ds.Seed, t.ID, streamQuery, k<<32|i)
			qs = append(qs, question{t.ID, admin + r.Uint64N(last-admin+1)})
		}
	}
	fn := func(ctx context.Context, w int, i int64) error {
		q := qs[i%int64(len(qs))]
		eng, release, err := rs.AsOf(ctx, q.tenant, replay.Moment{Seq: q.seq})
		if err != nil {
			return err
		}
		defer release()
		_, err = eng.Check(ctx, q.tenant, projections.CheckQuery{Principal: Admin, Permission: aggregates.SessionLogin})
		return err
	}
	workers := max(b.opt.workers, 1)
	o := drive(ctx, driveSpec{workers: workers, duration: b.opt.duration}, fn)
	r := resultOf("asof", fmt.Sprintf("random-moment/workers=%d", workers), "queries/s", o, b.scaleOf())
	gap := maxGap(ckpts, last)
	r.Extra = map[string]any{"checkpoints": len(ckpts), "max_gap": gap, "checkpoint_every": b.opt.checkpointEvery}
	r.Notes = append(r.Notes, fmt.Sprintf("%d checkpoints (every %d events asked, largest gap %d messages) over %d messages",
		len(ckpts), b.opt.checkpointEvery, gap, last))
	return []Result{r}, nil
}

// checkpointSeqs lists the sequences of the checkpoints replay keeps (ckpt-<seq> directories).
func checkpointSeqs(dir string) []uint64 {
	ents, _ := os.ReadDir(dir)
	var out []uint64
	for _, e := range ents {
		if s, ok := strings.CutPrefix(e.Name(), "ckpt-"); ok {
			if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
				out = append(out, seq)
			}
		}
	}
	slices.Sort(out)
	return out
}

// maxGap is the most messages an as_of may have to replay: the largest distance from a moment
// to the checkpoint at or below it.
func maxGap(ckpts []uint64, last uint64) uint64 {
	prev, gap := uint64(0), uint64(0)
	for _, s := range append(ckpts, last) {
		gap = max(gap, s-prev)
		prev = s
	}
	return gap
}
