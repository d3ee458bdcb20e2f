package projections

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// published is what the projector tells queries about the DB after each commit: the applied
// sequence and each tenant's stored sequence, so that a query over the live DB needs no read
// for either. A seqlock (Projector.gen: odd while a batch commits) tells a query whether its
// snapshot holds exactly the published state; if not, it reads both from the snapshot.
type published struct {
	applied uint64
	tenants map[string]uint64 // tenant id -> sequence in front of its stored state
}

// loadPublished reads what to publish from a DB: the applied sequence and every tenant's
// stored sequence, with two seeks per tenant.
func loadPublished(pb *pebble.DB) (*published, error) {
	applied, err := readApplied(pb)
	if err != nil {
		return nil, err
	}
	pub := &published{applied: applied, tenants: map[string]uint64{}}
	it, err := pb.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("projections: list tenants: %w", err)
	}
	defer it.Close()
	// System keys start with '!'; every tenant token starts above it.
	for ok := it.SeekGE([]byte{'!' + 1}); ok; {
		tenant, _, found := bytes.Cut(it.Key(), []byte{sep})
		if !found {
			return nil, fmt.Errorf("projections: malformed key %q", it.Key())
		}
		tenant = bytes.Clone(tenant)
		tk := tenantKey(string(tenant))
		if it.SeekGE(tk) && bytes.Equal(it.Key(), tk) {
			seq, _, err := decodeSeq(it.Value())
			if err != nil {
				return nil, err
			}
			pub.tenants[string(tenant)] = seq
		}
		ok = it.SeekGE(prefixEnd(tenantPrefix(string(tenant))))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("projections: list tenants: %w", err)
	}
	return pub, nil
}

// publish records a committed batch: its applied sequence and the tenants it rewrote.
func (p *Projector) publish(applied uint64, tenants map[string]uint64) {
	old := p.pub.Load()
	next := &published{applied: applied, tenants: old.tenants}
	if len(tenants) > 0 {
		next.tenants = make(map[string]uint64, len(old.tenants)+len(tenants))
		for k, v := range old.tenants {
			next.tenants[k] = v
		}
		for k, v := range tenants {
			next.tenants[k] = v
		}
	}
	p.pub.Store(next)
}

// snapshot opens a snapshot of the DB and, when no batch committed while it was taken, the
// published state it holds exactly.
func (p *Projector) snapshot() (*pebble.Snapshot, *published) {
	g1 := p.gen.Load()
	snap := p.db.pb.NewSnapshot()
	pub := p.pub.Load()
	if g2 := p.gen.Load(); g1 != g2 || g1&1 == 1 {
		return snap, nil
	}
	return snap, pub
}
