package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
)

// pending is an aggregate touched by the batch being built: its state as events are applied,
// and the index entries of its state as committed (so that only the difference is written).
type pending struct {
	key    string // its state key
	tenant string
	p      *aggregates.Principal
	r      *aggregates.Record
	old    []entry
}

// writer turns events into one Pebble batch. It loads each aggregate at most once per batch
// (from the projector's cache of committed states, else from Pebble), applies the events in
// memory, and at flush writes each touched state once, its index difference and the applied
// sequence. The projector keeps one writer and resets it for each batch: its maps and lists
// keep their capacity, which while catching up saves growing them again for every batch.
type writer struct {
	r       reader // the committed state: the DB, or an overlay (the batch itself, read through)
	b       *pebble.Batch
	states  *stateCache
	handoff *handoff         // states the command service offers (handoff.go); empty but in acld
	tenants map[string]bool  // tenants whose policy part changed in this batch
	touched map[string]int32 // state key -> index in pend
	pend    []pending        // touched aggregates, in the order of their first event
	kbuf    []byte
	sk      []byte // the state key being looked up
	w       *writes
	cmds    aggregates.Commands // scratch for Apply's command memory
}

// newWriter builds into ws, which the caller resets and reuses.
func newWriter(r reader, ws *writes, states *stateCache, h *handoff) *writer {
	return &writer{r: r, w: ws, states: states, handoff: h,
		tenants: map[string]bool{}, touched: map[string]int32{}}
}

// reset starts a batch built into b.
func (w *writer) reset(b *pebble.Batch) {
	w.b = b
	clear(w.tenants)
	clear(w.touched)
	clear(w.pend) // drop the states: the cache holds those it keeps
	w.pend = w.pend[:0]
}

// pendingOf returns the pending state of key k, nil if the batch has not touched it yet.
func (w *writer) pendingOf(k []byte) *pending {
	if i, ok := w.touched[string(k)]; ok {
		return &w.pend[i]
	}
	return nil
}

// addPending adds pd under key k; the pointer is valid until the next addPending.
func (w *writer) addPending(k []byte, pd pending) *pending {
	pd.key = string(k)
	w.touched[pd.key] = int32(len(w.pend))
	w.pend = append(w.pend, pd)
	return &w.pend[len(w.pend)-1]
}

// apply folds one decoded event into the batch; from is where its message's aggregate state
// may be offered (handoff.go).
func (w *writer) apply(e events.Envelope, d events.Data, from offerKey) error {
	switch e.Aggregate.Kind {
	case events.KindTenant:
		return w.applyTenant(e, d)
	case events.KindPrincipal:
		_, fresh := d.(events.PrincipalRegisteredV1)
		pd, err := w.principal(e.Tenant, e.Aggregate.ID, from, fresh)
		if err != nil {
			return err
		}
		// The command service remembers commands; the read model need not: every state the
		// projector holds lends the writer's one scratch memory, emptied after each event.
		pd.p.Commands = w.cmds
		pd.p.Apply(e, d)
		w.cmds, pd.p.Commands = pd.p.Commands, aggregates.Commands{}
		w.cmds.Reset()
	case events.KindRecord:
		_, fresh := d.(events.RecordRegisteredV1)
		pd, err := w.record(e.Tenant, e.Aggregate.Type, e.Aggregate.ID, from, fresh)
		if err != nil {
			return err
		}
		pd.r.Commands = w.cmds
		pd.r.Apply(e, d)
		w.cmds, pd.r.Commands = pd.r.Commands, aggregates.Commands{}
		w.cmds.Reset()
	default:
		return fmt.Errorf("projections: event %s of unknown aggregate kind %q", e.ID, e.Aggregate.Kind)
	}
	return nil
}

func (w *writer) applyTenant(e events.Envelope, d events.Data) error {
	// Seat changes only touch a seat key: rewriting the whole tenant for each would make the
	// cost of a level change grow with the number of principals.
	if sc, ok := d.(events.SeatChangedV1); ok {
		k := seatKey(e.Tenant, sc.Principal)
		if sc.To == "" || sc.To == aggregates.LevelDisabled {
			addWrite(w.w, k, "", true)
		} else {
			addWrite(w.w, k, sc.To, false)
		}
		return nil
	}
	t, err := w.tenant(e.Tenant)
	if err != nil {
		return err
	}
	t.Apply(e, d)
	clear(t.Commands)
	w.tenants[e.Tenant] = true
	if ud, ok := d.(events.UnitDefinedV1); ok {
		w.kbuf = eachRecordEntry(w.kbuf, e.Tenant, aggregates.UnitAsRecord(ud.Unit, e.ID), func(k []byte, v string) {
			addWrite(w.w, k, v, false)
		})
	}
	return nil
}

func (w *writer) tenant(id string) (*aggregates.Tenant, error) {
	if t := w.states.tenant(id); t != nil {
		return t, nil
	}
	t := aggregates.NewTenant(id)
	if v, ok, err := w.get(tenantKey(id)); err != nil {
		return nil, err
	} else if ok {
		if t, err = decodeTenant(v); err != nil {
			return nil, err
		}
	}
	w.states.putTenant(id, t)
	return t, nil
}

// principal returns the pending state of a principal, loading it first. A registration (fresh)
// starts a principal that does not exist yet: the command service never registers an id twice
// (already_exists; ids are never reused), so its read is skipped, which while catching up is
// most reads. A state the command service offered for the message that touches it first in
// the batch (from, see handoff.go) is taken instead of a read.
func (w *writer) principal(tenant, id string, from offerKey, fresh bool) (*pending, error) {
	w.sk = principalKey(w.sk[:0], tenant, id)
	k := w.sk
	// Taken in any case, before the batch's pending state answers: a later message of the
	// aggregate in the same batch has its own offer, which nothing else would take.
	offered := w.handoff.take(from.subject, from.expected)
	if pd := w.pendingOf(k); pd != nil {
		return pd, nil
	}
	p, _ := w.states.getBytes(k).(*aggregates.Principal)
	if p == nil && fresh {
		// aggregates.NewPrincipal without its command map (Apply gets the writer's scratch).
		p = &aggregates.Principal{ID: id, Level: aggregates.LevelDisabled, Prov: map[string]string{}}
	}
	if p == nil && offered != nil {
		if p = handedPrincipal(offered, id); p != nil {
			w.handoff.taken.Add(1)
		}
	}
	if p == nil {
		w.handoff.read.Add(1)
		p = aggregates.NewPrincipal(id)
		if v, ok, err := w.get(k); err != nil {
			return nil, err
		} else if ok {
			if p, err = decodePrincipal(v); err != nil {
				return nil, err
			}
		}
	}
	return w.addPending(k, pending{tenant: tenant, p: p, old: principalEntries(tenant, p)}), nil
}

// record returns the pending state of a record, loading it first unless fresh (see principal).
func (w *writer) record(tenant, typ, id string, from offerKey, fresh bool) (*pending, error) {
	w.sk = recordKey(w.sk[:0], tenant, typ, id)
	k := w.sk
	offered := w.handoff.take(from.subject, from.expected) // before pendingOf: see principal
	if pd := w.pendingOf(k); pd != nil {
		return pd, nil
	}
	r, _ := w.states.getBytes(k).(*aggregates.Record)
	if r == nil && fresh {
		r = &aggregates.Record{Type: typ, ID: id, Prov: map[string]string{}} // NewRecord, no command map
	}
	if r == nil && offered != nil {
		if r = handedRecord(offered, typ, id); r != nil {
			w.handoff.taken.Add(1)
		}
	}
	if r == nil {
		w.handoff.read.Add(1)
		r = aggregates.NewRecord(typ, id)
		if v, ok, err := w.get(k); err != nil {
			return nil, err
		} else if ok {
			if r, err = decodeRecord(v); err != nil {
				return nil, err
			}
		}
	}
	pd := pending{tenant: tenant, r: r}
	if !shadowed(typ) {
		pd.old = recordEntries(tenant, r)
	}
	return w.addPending(k, pd), nil
}

// get reads a committed value; the copy outlives Pebble's buffer.
func (w *writer) get(k []byte) ([]byte, bool, error) {
	v, closer, err := w.r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("projections: read %q: %w", k, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// flush writes every touched state, the index differences and the applied sequence into the
// batch. Nothing reaches Pebble until the batch is committed.
func (w *writer) flush(applied uint64) error {
	for id := range w.tenants {
		v, err := encodeTenant(w.states.tenant(id))
		if err != nil {
			return err
		}
		addWrite(w.w, tenantKey(id), v, false)
	}
	for i := range w.pend {
		w.flushOne(&w.pend[i])
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], applied)
	addWrite(w.w, appliedKey, seq[:], false)
	addWrite(w.w, holdersKey, seq[:], false)
	return w.w.into(w.b)
}

func (w *writer) flushOne(pd *pending) {
	// The state is encoded straight into the batch's arena (encodePrincipal, encodeRecord).
	if pd.p != nil {
		w.w.addEncoded(pd.key, func(b []byte) []byte {
			return appendPrincipal(binary.BigEndian.AppendUint64(b, pd.p.Seq), pd.p)
		})
	} else {
		w.w.addEncoded(pd.key, func(b []byte) []byte {
			return appendRecord(binary.BigEndian.AppendUint64(b, pd.r.Seq), pd.r)
		})
	}
	if len(pd.old) == 0 {
		// A new aggregate (most of them while catching up): nothing to diff, stream the keys.
		w.kbuf = w.entries(pd, func(k []byte, v string) { addWrite(w.w, k, v, false) })
		return
	}
	var now []entry
	w.kbuf = w.entries(pd, func(k []byte, v string) { now = append(now, entry{string(k), v}) })
	diffEntries(pd.old, now,
		func(k, v string) { addWrite(w.w, k, v, false) },
		func(k string) { addWrite(w.w, k, "", true) })
}

// entries calls emit with the index entries of pd's current state.
func (w *writer) entries(pd *pending, emit func(k []byte, v string)) []byte {
	if pd.p != nil {
		return eachPrincipalEntry(w.kbuf, pd.tenant, pd.p, emit)
	}
	if shadowed(pd.r.Type) {
		return w.kbuf
	}
	return eachRecordEntry(w.kbuf, pd.tenant, pd.r, emit)
}

// touchedHashes lists the hashes of the principal and record keys the batch wrote.
func (w *writer) touchedHashes() []uint64 {
	out := make([]uint64, 0, len(w.pend))
	for i := range w.pend {
		out = append(out, maphash.String(modSeed, w.pend[i].key))
	}
	return out
}

// tenantSeqs lists the stored sequence of each tenant the batch rewrote.
func (w *writer) tenantSeqs() map[string]uint64 {
	if len(w.tenants) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(w.tenants))
	for id := range w.tenants {
		out[id] = w.states.tenant(id).Seq
	}
	return out
}

// committed hands the states of a committed batch to the cache.
func (w *writer) committed() {
	for i := range w.pend {
		if pd := &w.pend[i]; pd.p != nil {
			w.states.put(pd.key, pd.p)
		} else {
			w.states.put(pd.key, pd.r)
		}
	}
}
