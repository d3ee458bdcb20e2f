package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// Source is what a rebuild reads: *events.Store.
type Source interface {
	Reader
	LastSeq(ctx context.Context) (uint64, error)
}

// Progress reports a rebuild: Done of Total stream sequences applied, Events envelopes among
// them, after Elapsed.
type Progress struct {
	Done    uint64        `json:"done"`
	Total   uint64        `json:"total"`
	Events  uint64        `json:"events"`
	Elapsed time.Duration `json:"elapsed"`
}

// Rate is the messages applied per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// ETA estimates the time left at the rate so far.
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if r == 0 || p.Done >= p.Total {
		return 0
	}
	return time.Duration(float64(p.Total-p.Done) / r * float64(time.Second))
}

// progressEvery bounds how often a rebuild reports progress.
const progressEvery = 200 * time.Millisecond

// Model names a read model that can be rebuilt from the stream.
type Model string

const (
	ModelProjections Model = "projections" // the query read model (projections.DB)
	ModelAudit       Model = "audit"       // the audit index of history
)

// Rebuild builds a read model from the stream into dir, which must not exist or be empty:
// from sequence 1 up to to (0: the stream's last sequence when the rebuild starts). progress,
// when set, is called every ~200 ms and once at the end.
func Rebuild(ctx context.Context, store Source, dir string, model Model, to uint64, progress func(Progress)) (Progress, error) {
	if err := emptyDir(dir); err != nil {
		return Progress{}, err
	}
	if to == 0 {
		last, err := store.LastSeq(ctx)
		if err != nil {
			return Progress{}, fmt.Errorf("replay: rebuild: %w", err)
		}
		to = last
	}
	r := &reporter{total: to, start: time.Now(), fn: progress}
	var err error
	switch model {
	case ModelProjections:
		err = rebuildProjections(ctx, store, dir, to, r)
	case ModelAudit:
		err = rebuildAudit(ctx, store, dir, to, r)
	default:
		return Progress{}, fmt.Errorf("replay: rebuild: unknown model %q (projections or audit)", model)
	}
	p := r.final()
	if err != nil {
		return p, err
	}
	if p.Done != to {
		return p, fmt.Errorf("replay: rebuild stopped at sequence %d of %d", p.Done, to)
	}
	return p, nil
}

// rebuildDB opens a model being rebuilt: no WAL (a rebuild that stops is started over, and the
// memtables are flushed before closing) and a larger memtable for the bulk load.
var rebuildDB = projections.DBOptions{MemTableBytes: 64 << 20, DisableWAL: true}

func rebuildProjections(ctx context.Context, store Source, dir string, to uint64, r *reporter) error {
	db, err := projections.OpenDB(dir, rebuildDB)
	if err != nil {
		return err
	}
	if to > 0 {
		_, err = replayCounting(ctx, store, db, to, r)
	}
	if err == nil {
		err = db.Flush() // without a WAL, what the memtables hold would be lost at close
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// replayCounting is replayInto that also counts envelopes for the progress report.
func replayCounting(ctx context.Context, store Reader, db *projections.DB, to uint64, r *reporter) (uint64, error) {
	counting := countingReader{Reader: store, r: r}
	return replayInto(ctx, counting, db, allEvents, to, 0, func(applied uint64) error {
		r.done(applied)
		return nil
	})
}

func rebuildAudit(ctx context.Context, store Source, dir string, to uint64, r *reporter) error {
	a, err := openAudit(dir, true, nil)
	if err != nil {
		return err
	}
	if to > 0 {
		// The reader hands over up to a few thousand messages at a time; applying them in
		// larger batches writes each state a batch touches once, and commits less often.
		buf := make([]events.Message, 0, replayGroup)
		apply := func() error {
			if len(buf) == 0 {
				return nil
			}
			if err := a.ApplyMessages(buf); err != nil {
				return err
			}
			clear(buf) // let the applied events go
			buf = buf[:0]
			r.done(a.Applied())
			return nil
		}
		err = store.Read(ctx, 1, to, func(msgs []events.Message) error {
			r.count(msgs)
			buf = append(buf, msgs...) // Read reuses its slice, not the messages
			if len(buf) >= replayGroup {
				return apply()
			}
			return nil
		})
		if err == nil {
			err = apply()
		}
	}
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return err
}

// countingReader counts the envelopes of what it reads.
type countingReader struct {
	Reader
	r *reporter
}

func (c countingReader) Read(ctx context.Context, from, to uint64, fn func([]events.Message) error) error {
	return c.Reader.Read(ctx, from, to, func(msgs []events.Message) error {
		c.r.count(msgs)
		return fn(msgs)
	})
}

// reporter rate-limits progress reports.
type reporter struct {
	total, applied, events uint64
	start, last            time.Time
	fn                     func(Progress)
}

func (r *reporter) count(msgs []events.Message) {
	for _, m := range msgs {
		r.events += uint64(len(m.Events))
	}
}

func (r *reporter) done(applied uint64) {
	r.applied = applied
	if r.fn != nil && time.Since(r.last) >= progressEvery {
		r.last = time.Now()
		r.fn(r.progress())
	}
}

func (r *reporter) progress() Progress {
	return Progress{Done: r.applied, Total: r.total, Events: r.events, Elapsed: time.Since(r.start)}
}

func (r *reporter) final() Progress {
	p := r.progress()
	if r.fn != nil {
		r.fn(p)
	}
	return p
}

// emptyDir accepts a directory that does not exist or is empty: a rebuild never writes over a
// read model.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay: rebuild into %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("replay: rebuild into %s: the directory is not empty; give a new one", dir)
	}
	return nil
}
