package projections

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/events"
)

// Overlay is a read model at a later sequence than a DB that is never written (replay's as_of
// states: a checkpoint opened read-only): the DB, and the writes of the messages applied since,
// held in a Pebble indexed batch that reads through to the DB. The projector's code applies
// the messages as it does to the live model; nothing is committed, so one open checkpoint can
// serve any number of overlays, and an as_of answer neither copies a checkpoint nor opens its
// tables again.
//
// Apply messages from one goroutine, then read: an indexed batch is not safe for concurrent
// use while it is written. Once written, concurrent reads are safe here because the writer
// writes no range deletions or range keys (reading a batch with either fragments them lazily,
// a write); Pebble's iterators over an unchanging batch read it only.
type Overlay struct {
	db *DB
	p  *Projector
}

// NewOverlay starts an overlay on db at db's applied sequence.
func NewOverlay(db *DB) (*Overlay, error) {
	b := db.pb.NewIndexedBatch()
	return newOverlay(db, b, b)
}

// NewOverlayAsOf starts an overlay on db as of the tables db flushed at applied sequences up
// to seq (the model at the last of them; Applied says which): db was written with TagApplied,
// and f are its Flushes. One open DB so serves the moments of every checkpoint whose tables it
// links.
func NewOverlayAsOf(db *DB, f *Flushes, seq uint64) (*Overlay, error) {
	b := db.pb.NewIndexedBatch()
	return newOverlay(db, b, newTablesUpTo(b, f, seq))
}

func newOverlay(db *DB, b *pebble.Batch, r reader) (*Overlay, error) {
	applied, err := readApplied(r)
	if err != nil {
		if t, ok := r.(*tablesUpTo); ok {
			t.close()
		}
		b.Close()
		return nil, err
	}
	p := newProjector(db, nil, &published{applied: applied, tenants: map[string]uint64{}})
	p.overlay, p.over = b, r
	return &Overlay{db: db, p: p}, nil
}

// ApplyMessages applies msgs on top of what the overlay holds (see Projector.ApplyMessages).
func (o *Overlay) ApplyMessages(msgs []events.Message) error { return o.p.ApplyMessages(msgs) }

// Applied is the last sequence the overlay has applied.
func (o *Overlay) Applied() uint64 { return o.p.Applied() }

// Close releases the batch; the DB stays open (its owner closes it).
func (o *Overlay) Close() error {
	if t, ok := o.p.over.(*tablesUpTo); ok {
		t.close()
	}
	if err := o.p.overlay.Close(); err != nil {
		return fmt.Errorf("projections: close overlay: %w", err)
	}
	return nil
}

// NewOverlayEngine returns an engine answering over o, as of what o has applied. Apply nothing
// more to o while the engine is in use.
func NewOverlayEngine(o *Overlay, opts EngineOptions) *Engine {
	e := NewEngine(o.db, nil, opts)
	e.over = o.p.over
	return e
}
