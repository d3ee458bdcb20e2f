package projections

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/acl-es/acl/aggregates"
)

// handoff carries, from the command service of the same process, the states of principals and
// records that commands were decided on: the projector applying the message such a command
// appended starts from that state instead of reading and decoding it from the read model (a
// cold Pebble Get for most aggregates a workload of random records touches: the projector's
// cache holds a quarter of them).
//
// An offer is the state of subject's aggregate at sequence expected, made before the command's
// append, which states expected as the subject's last sequence. The projector takes it for a
// message of that subject whose append stated the same (events.Message.Expected): the stream
// checked it before storing the message, so the aggregate had no message between expected and
// the message, and the read model's state before the message is the fold of the subject up to
// expected, as the offered state is (the command service's states are such folds, applied by
// the same Apply; the read model keeps every field of them but the commands they remember,
// which the projector does not keep either, see writer.apply). So whatever became of the
// append (stored, refused, lost in a race with another instance or another attempt, stored by
// another attempt of the same command), an offer taken is the state the read model holds.
// What is not taken (a refused append; a message of another instance, which states another
// sequence or finds no offer; everything after a restart) is read from the read model as
// before. This rests on the stream being acld's own: a copy that numbered the messages anew
// (a sourced stream) would keep headers that name other sequences.
//
// The offers are a map bounded by maxOffers, dropped whole when full (an offer not taken is
// one the projector never asks for: its append failed; every message the projector applies
// takes its own offer, also one whose aggregate the batch already holds) and when an idle acld
// drops its caches.
// The states are the command service's, shared and read-only: the projector takes a copy
// (handedPrincipal, handedRecord).
type handoff struct {
	mu     sync.Mutex
	offers map[offerKey]any // *aggregates.Principal or *aggregates.Record
	// taken and read count the states the projector loaded from an offer and from the read
	// model (acl_projector_state_loads_total).
	taken, read atomic.Uint64
}

type offerKey struct {
	subject  string
	expected uint64
}

// maxOffers bounds the offers kept: far more than the commands in flight (acld works on at
// most 256 at once) and the projector's lag behind them.
const maxOffers = 4096

// Offer gives the projector the state before of the aggregate whose subject is subject, at
// sequence expected, before an append that states expected as the subject's last sequence. The
// state must be a fold of the subject's messages up to expected (its Seq) and stay unchanged
// (the command service's shared states are). Anything else is ignored: a tenant (the projector
// keeps every tenant), a state of another sequence, an aggregate that does not exist yet (a
// creation, which the projector does not read).
func (p *Projector) Offer(subject string, expected uint64, before any) {
	switch s := before.(type) {
	case *aggregates.Principal:
		if s.Seq != expected {
			return
		}
	case *aggregates.Record:
		if s.Seq != expected {
			return
		}
	default:
		return
	}
	if expected == 0 {
		return
	}
	h := &p.handoff
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.offers == nil || len(h.offers) >= maxOffers {
		h.offers = make(map[offerKey]any, 64)
	}
	h.offers[offerKey{subject, expected}] = before
}

// take returns the state offered for subject at expected, and forgets it; nil when there is
// none.
func (h *handoff) take(subject string, expected uint64) any {
	if expected == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := offerKey{subject, expected}
	st, ok := h.offers[k]
	if ok {
		delete(h.offers, k)
	}
	return st
}

// clear forgets every offer (an idle projector drops its caches).
func (h *handoff) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offers = nil
}

// loadsOf says where the projector's states came from: offers and the read model.
func (h *handoff) loadsOf() (taken, read uint64) { return h.taken.Load(), h.read.Load() }

// handedPrincipal returns a copy the projector owns of an offered state, if st is principal
// id's; nil otherwise. The copy shares the offerer's slices (Apply replaces them, never writes
// into them) but not its provenance map (Apply writes into it), and remembers no commands.
func handedPrincipal(st any, id string) *aggregates.Principal {
	s, ok := st.(*aggregates.Principal)
	if !ok || s.ID != id {
		return nil
	}
	c := *s
	c.Prov = cloneProv(s.Prov)
	c.Commands = aggregates.Commands{}
	return &c
}

// handedRecord is handedPrincipal for record typ/id.
func handedRecord(st any, typ, id string) *aggregates.Record {
	s, ok := st.(*aggregates.Record)
	if !ok || s.Type != typ || s.ID != id {
		return nil
	}
	c := *s
	c.Prov = cloneProv(s.Prov)
	c.Commands = aggregates.Commands{}
	return &c
}

// cloneProv copies a provenance map; a nil one becomes empty, as the read model decodes it.
func cloneProv(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
