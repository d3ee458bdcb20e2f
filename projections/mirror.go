package projections

import (
	"fmt"
	"slices"

	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
)

// MirrorFunc receives a batch the projector committed: its Pebble representation, valid only
// during the call, and the applied sequence before and after it. A DB that held the projector's
// state as of prev holds its state as of last once it applies repr (DB.ApplyBatch): the batch
// writes each state it changes whole, with its index difference and the applied sequence.
type MirrorFunc func(repr []byte, prev, last uint64)

// mirror is one receiver of the committed batches (AddMirror).
type mirror struct {
	every uint64
	fn    MirrorFunc
}

// AddMirror hands fn every batch the projector commits from now on, after its commit, on the
// projector's goroutine (fn must not block). Batches are split so that each multiple of every
// (0: none) ends one: a mirror that keeps a checkpoint at those sequences can take it between
// two batches. remove stops the handing. replay keeps its as_of chain of checkpoints with it,
// instead of replaying every event a second time into a copy whose reads probe every table of
// its chain.
func (p *Projector) AddMirror(every uint64, fn MirrorFunc) (remove func()) {
	m := &mirror{every: every, fn: fn}
	p.mu.Lock()
	p.mirrors = append(slices.Clone(p.mirrors), m)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.mirrors = slices.DeleteFunc(slices.Clone(p.mirrors), func(o *mirror) bool { return o == m })
		p.mu.Unlock()
	}
}

// runEnd is the length of the first run of msgs that ApplyMessages commits in one batch: up to
// and including the first message at a multiple of a mirror's spacing. The caller holds mu.
func (p *Projector) runEnd(msgs []events.Message) int {
	if len(p.mirrors) == 0 {
		return len(msgs)
	}
	for i, m := range msgs {
		for _, mr := range p.mirrors {
			if mr.every > 0 && m.Seq%mr.every == 0 {
				return i + 1
			}
		}
	}
	return len(msgs)
}

// mirrorCommitted hands the batch just committed, from prev to last, to the mirrors. The caller
// holds mu.
func (p *Projector) mirrorCommitted(b *pebble.Batch, prev, last uint64) {
	if len(p.mirrors) == 0 || p.overlay != nil {
		return
	}
	repr := b.Repr()
	for _, m := range p.mirrors {
		m.fn(repr, prev, last)
	}
}

// ApplyBatch commits the representation of a batch another DB's projector committed
// (MirrorFunc), and takes ownership of repr. No sync: replay's chain copy, its user, has no
// write-ahead log; its checkpoints are flushed first.
func (db *DB) ApplyBatch(repr []byte) error {
	// The projector's commit wrote its sequence number into the header of repr. Pebble assigns
	// this DB's own at the commit, except to a batch larger than half its memtable (a
	// projector's catch-up batch, against the chain head's 4 MiB): that one it keeps whole as a
	// flushable batch, which takes the header's number and refuses a second (a panic, which left
	// the as_of chain stopped for good and the filler's Close waiting on the commit it held).
	if len(repr) >= batchrepr.HeaderLen {
		batchrepr.SetSeqNum(repr, 0)
	}
	b := db.pb.NewBatch()
	defer b.Close()
	if err := b.SetRepr(repr); err != nil {
		return fmt.Errorf("projections: mirrored batch: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("projections: commit mirrored batch: %w", err)
	}
	return nil
}
