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
	db        *DB
	p         *Projector
	versioned bool
}

// NewOverlay starts an overlay on db at db's applied sequence. vs, when not nil and caught up
// with db, serves the states the overlay reads (see Versions).
func NewOverlay(db *DB, vs *Versions) (*Overlay, error) {
	b := db.pb.NewIndexedBatch()
	return newOverlay(db, vs, b, b)
}

// NewOverlayAsOf starts an overlay on db as of the tables db flushed at applied sequences up
// to seq (the model at the last of them; Applied says which): db was written with TagApplied,
// and f are its Flushes. One open DB so serves the moments of every checkpoint whose tables it
// links, from f.From() on. vs is as for NewOverlay.
func NewOverlayAsOf(db *DB, f *Flushes, seq uint64, vs *Versions) (*Overlay, error) {
	b := db.pb.NewIndexedBatch()
	r, err := newTablesUpTo(b, f, seq)
	if err != nil {
		b.Close()
		return nil, err
	}
	return newOverlay(db, vs, b, r)
}

func newOverlay(db *DB, vs *Versions, b *pebble.Batch, r reader) (*Overlay, error) {
	applied, err := readApplied(r)
	if err != nil {
		if c, ok := r.(interface{ close() }); ok {
			c.close()
		}
		b.Close()
		return nil, err
	}
	o := &Overlay{db: db}
	if vs != nil && vs.Covers(applied) {
		r = &versioned{reader: r, b: b, vs: vs, floor: applied}
		o.versioned = true
	}
	o.p = newProjector(db, nil, &published{applied: applied, tenants: map[string]uint64{}})
	o.p.overlay, o.p.over = b, r
	return o, nil
}

// Versioned says whether the overlay reads its states from Versions.
func (o *Overlay) Versioned() bool { return o.versioned }

// ApplyMessages applies msgs on top of what the overlay holds (see Projector.ApplyMessages).
func (o *Overlay) ApplyMessages(msgs []events.Message) error { return o.p.ApplyMessages(msgs) }

// Applied is the last sequence the overlay has applied.
func (o *Overlay) Applied() uint64 { return o.p.Applied() }

// Close releases the batch; the DB stays open (its owner closes it).
func (o *Overlay) Close() error {
	if c, ok := o.p.over.(interface{ close() }); ok {
		c.close()
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
