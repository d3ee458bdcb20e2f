package replay

import (
	"context"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// AsOf is the hook of the query servers: an engine answering as the system stood at the moment
// asOf, and the function to call when the query is done with it. A time means the last event at
// or before it (a future time: now); a sequence the live read model has not applied yet waits
// for it like min_seq (the service's bound), then answers not_caught_up. tenant is not needed to
// build the state (the copy holds every tenant) but names the question in errors.
func (s *Service) AsOf(ctx context.Context, tenant string, asOf Moment) (*projections.Engine, func(), error) {
	seq, err := s.asOfSeq(ctx, asOf)
	if err != nil {
		return nil, nil, err
	}
	st, release, err := s.states.acquire(stateKey{tenant, seq}, s.bases.floor(seq), func(st *asOfState) error { return s.build(ctx, st) })
	if err != nil {
		return nil, nil, fmt.Errorf("replay: as_of %s for tenant %s: %w", asOf, tenant, err)
	}
	return st.engine, release, nil
}

// asOfSeq resolves a moment and waits until the live model has applied it: the stream then
// surely holds every event up to it.
func (s *Service) asOfSeq(ctx context.Context, asOf Moment) (uint64, error) {
	seq, err := resolve(ctx, s.store, asOf)
	if err != nil {
		return 0, err
	}
	if s.proj == nil {
		last, err := s.store.LastSeq(ctx)
		if err != nil {
			return 0, unavailable(err, "as_of %d", seq)
		}
		if seq > last {
			return 0, aggregates.Errorf(aggregates.CodeNotCaughtUp, "as_of %d: the stream ends at %d; retry", seq, last)
		}
		return seq, nil
	}
	if s.proj.Applied() >= seq {
		return seq, nil
	}
	s.opts.Bulk.Want(seq)
	wctx, cancel := context.WithTimeout(ctx, s.opts.Wait)
	defer cancel()
	if err := s.proj.WaitFor(wctx, seq); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, aggregates.Errorf(aggregates.CodeNotCaughtUp,
			"as_of %d: the read model has applied sequence %d, not yet %d; retry", seq, s.proj.Applied(), seq)
	}
	return seq, nil
}

// build makes the state of st.tenant at st.seq: an overlay on the nearest checkpoint at or
// below it, open read-only (or the overlay of an earlier state of the tenant that st took over:
// st.overlay is then set), with the tenant's events after what the overlay has applied replayed
// into it by a projector of its own, read from the event log (or the stream, past the log). Other tenants' events are skipped: they cannot change this
// tenant's answers, and a stream of many tenants would otherwise make every as_of replay all of
// them.
func (s *Service) build(ctx context.Context, st *asOfState) error {
	var src Reader = s.store
	// The event log holds the events when it has caught up with the moment (nearly always); the
	// stream serves the rest.
	fromLog := s.elog.Applied() >= st.seq
	if fromLog {
		src = logged{s.elog, st.tenant}
		s.builtFrom.log.Add(1)
	} else {
		s.builtFrom.stream.Add(1)
	}
	if st.overlay == nil {
		floor := s.bases.floor(st.seq)
		if !fromLog {
			// The events after the checkpoint (or flush) are read while its base is found or
			// opened.
			src = readAhead(ctx, s.store, floor+1, st.seq)
		}
		b, start, asOf, err := s.bases.acquireAt(st.seq, floor)
		if err != nil {
			return err
		}
		floor = start
		st.base, st.done = floor, func() { s.bases.release(b) }
		if asOf != nil {
			st.overlay, err = projections.NewOverlayAsOf(b.db, asOf, floor, s.bases.versions)
		} else {
			st.overlay, err = projections.NewOverlay(b.db, s.bases.versions)
		}
		if err != nil {
			return err
		}
		if st.overlay.Versioned() {
			s.statesFrom.versions.Add(1)
		} else {
			s.statesFrom.tables.Add(1)
		}
	}
	if st.seq > st.overlay.Applied() { // replayOnto reads to the stream's end when asked for 0
		only := events.Prefix + "." + st.tenant + "."
		if _, err := replayOnto(ctx, src, st.overlay, only, st.seq, 0, nil); err != nil {
			return err
		}
	}
	st.engine = projections.NewOverlayEngine(st.overlay, s.opts.Engine)
	return nil
}

// scratchDB opens throw-away copies a replay writes into: a small cache, no WAL, no fsync, no
// compactions (a copy opened on a checkpoint with many level-0 tables would otherwise start
// compacting them, at several times the cost of what it serves).
var scratchDB = projections.DBOptions{CacheBytes: 8 << 20, MemTableBytes: 16 << 20, DisableWAL: true,
	DisableCompactions: true, FS: noSyncFS{vfs.Default}}

// Reader is what replays read from the event store: *events.Store.
type Reader interface {
	Read(ctx context.Context, from, to uint64, fn func([]events.Message) error) error
}

// rangeLoader is the store's batched direct get (*events.Store): a short range costs a round trip
// per thousand messages, where an ordered consumer costs its creation and deletion first.
type rangeLoader interface {
	LoadRange(ctx context.Context, subject string, from, to uint64) ([]events.Message, error)
}

// readerOf is how a replay reads from..to: a short range with batched direct gets
// (LoadRange) when the store has them, else through an ordered consumer (Read).
func readerOf(store Reader, from, to uint64) func(ctx context.Context, from, to uint64, fn func([]events.Message) error) error {
	lr, ok := store.(rangeLoader)
	if !ok || to == 0 || to-from >= loadRangeMax {
		return store.Read
	}
	return func(ctx context.Context, from, to uint64, fn func([]events.Message) error) error {
		msgs, err := lr.LoadRange(ctx, ">", from, to)
		if err != nil || len(msgs) == 0 {
			return err
		}
		return fn(msgs)
	}
}

// readAhead starts reading from..to in the background and returns a Reader that serves that
// range once read, and any other range from store (a thinning that dropped the checkpoint
// meanwhile, an error: the replay then reads as without it).
func readAhead(ctx context.Context, store Reader, from, to uint64) Reader {
	if to < from {
		return store
	}
	r := &readAheadReader{Reader: store, from: from, to: to, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = readerOf(store, from, to)(ctx, from, to, func(msgs []events.Message) error {
			r.msgs = append(r.msgs, msgs...)
			return nil
		})
	}()
	return r
}

type readAheadReader struct {
	Reader
	from, to uint64
	done     chan struct{}
	msgs     []events.Message // set before done is closed
	err      error
}

func (r *readAheadReader) Read(ctx context.Context, from, to uint64, fn func([]events.Message) error) error {
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil || from != r.from || to != r.to {
		return readerOf(r.Reader, from, to)(ctx, from, to, fn)
	}
	if len(r.msgs) == 0 {
		return nil
	}
	return fn(r.msgs)
}

// allEvents keeps every message in a replay.
const allEvents = ""

// loadRangeMax is the longest range read with LoadRange (an as_of replays fewer than
// CheckpointEvery messages); longer ones stream through an ordered consumer.
const loadRangeMax = 20_000

// replayGroup is how many messages a replay applies in one batch: the projector writes each
// aggregate a batch touches once, so large batches write less when aggregates repeat.
const replayGroup = 16384

// replayInto applies the stream's messages after db's applied sequence up to to (0: the
// stream's last) with a projector of db's own, in batches of up to replayGroup messages.
// only, when not "", keeps the messages whose subject starts with it (one tenant's, for as_of),
// and db then says it has applied to.
// The filter is applied here rather than by the server: a filtered batched direct get makes the
// server count the filter's pending messages first, which cost more than reading them all. When
// each is set it is called after every batch, and with every > 0 a batch also ends at each
// multiple of every, so that each sees those exact sequences (checkpoints at round sequences).
// It returns the sequence db has applied.
func replayInto(ctx context.Context, store Reader, db *projections.DB, only string, to, every uint64, each func(applied uint64) error) (uint64, error) {
	p, err := projections.NewCopyProjector(db)
	if err != nil {
		return 0, err
	}
	return replayOnto(ctx, store, p, only, to, every, each)
}

// applier is what a replay applies messages with: a projector of a DB, or an overlay.
type applier interface {
	Applied() uint64
	ApplyMessages(msgs []events.Message) error
}

// replayOnto is replayInto with an applier of the caller's.
func replayOnto(ctx context.Context, store Reader, p applier, only string, to, every uint64, each func(applied uint64) error) (uint64, error) {
	from := p.Applied() + 1
	if to != 0 && from > to {
		return p.Applied(), nil
	}
	read := readerOf(store, from, to)
	buf := make([]events.Message, 0, 4096)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := p.ApplyMessages(buf); err != nil {
			return err
		}
		clear(buf) // let the applied events go
		buf = buf[:0]
		if each != nil {
			return each(p.Applied())
		}
		return nil
	}
	err := read(ctx, from, to, func(msgs []events.Message) error {
		for _, m := range msgs {
			if only != "" && !strings.HasPrefix(m.Subject, only) {
				continue
			}
			buf = append(buf, m) // Read reuses its slice, not the messages
			if len(buf) >= replayGroup || (every > 0 && m.Seq%every == 0) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	if err == nil && only != "" && to != 0 && p.Applied() < to {
		// Only one tenant's events were replayed: the model answers that tenant as at to, and
		// says so (a message without events advances the applied sequence only).
		err = p.ApplyMessages([]events.Message{{Seq: to}})
	}
	if err != nil {
		return p.Applied(), fmt.Errorf("replay: replay %d..%d: %w", from, to, err)
	}
	return p.Applied(), nil
}
