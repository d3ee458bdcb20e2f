package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/cockroachdb/pebble/v2"
)

// Waiter is what min_seq waits on: the projector feeding the DB.
type Waiter interface {
	Applied() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// EngineOptions configures an Engine. Zero values take the defaults.
type EngineOptions struct {
	WaitBound     time.Duration // how long min_seq waits before not_caught_up; default 2 s
	CachedStates  int           // decoded principals and records kept; default 100,000
	DefaultLimit  int           // visible page size when none is asked; default 100
	MaxLimit      int           // largest visible page; default 1000
	MaxCandidates int           // principals query: most principals checked; default 1,000,000
	// Bulk, when set, is told of each min_seq the read model has not applied yet, so that a
	// projector yielding to a bulk load goes on until it has (events.BulkLoad.Want).
	Bulk *events.BulkLoad
	// Tenants, when set, shares decoded tenants with other engines (replay's as_of engines,
	// each over its own model); nil: each engine decodes its own.
	Tenants *TenantCache
}

// Engine answers queries over a DB: the live one fed by a projector, or a checkpoint opened by
// replay for as_of. Each query reads one Pebble snapshot and answers the sequence it reflects.
type Engine struct {
	db      *DB
	over    reader // an as_of overlay read instead of db (NewOverlayEngine); nil for a DB
	waiter  Waiter // nil: min_seq beyond the DB's sequence answers not_caught_up at once
	opts    EngineOptions
	decoded *decoded

	// tenants maps a tenant id to the tenant decoded at its stored sequence. Queries read it on
	// every view: an immutable map behind an atomic pointer costs them no shared write (a
	// read lock's counter bounced between the cores); tmu orders the rare copy-and-replace.
	tmu     sync.Mutex
	tenants atomic.Pointer[map[string]decodedEntry]
}

// NewEngine returns an engine over db; w is the projector feeding it, or nil.
func NewEngine(db *DB, w Waiter, o EngineOptions) *Engine {
	if o.WaitBound <= 0 {
		o.WaitBound = 2 * time.Second
	}
	if o.CachedStates <= 0 {
		o.CachedStates = 100_000
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 100
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	if o.MaxCandidates <= 0 {
		o.MaxCandidates = 1_000_000
	}
	e := &Engine{db: db, waiter: w, opts: o, decoded: newDecoded(o.CachedStates)}
	e.tenants.Store(&map[string]decodedEntry{})
	return e
}

// DropCache forgets the decoded principal and record states (--query-cache), as an idle acld
// does to come back near its footprint after a start: the next check of each decodes it again
// from the read model. Decoded tenants stay (one per tenant).
func (e *Engine) DropCache() { e.decoded.drop() }

// WaitFor waits, at most the engine's bound, until the read model has applied seq; then
// not_caught_up.
func (e *Engine) WaitFor(ctx context.Context, seq uint64) error {
	if seq == 0 {
		return nil
	}
	if e.waiter == nil {
		applied, err := e.Applied()
		if err != nil {
			return err
		}
		if applied >= seq {
			return nil
		}
		return notCaughtUp(seq, applied)
	}
	if e.waiter.Applied() >= seq {
		return nil
	}
	e.opts.Bulk.Want(seq)
	wctx, cancel := context.WithTimeout(ctx, e.opts.WaitBound)
	defer cancel()
	if err := e.waiter.WaitFor(wctx, seq); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("projections: wait for seq %d: %w", seq, ctx.Err())
		}
		return notCaughtUp(seq, e.waiter.Applied())
	}
	return nil
}

func notCaughtUp(seq, applied uint64) error {
	return &aggregates.Error{Code: aggregates.CodeNotCaughtUp, Op: "query",
		Message: fmt.Sprintf("the read model has applied sequence %d, not yet %d; retry", applied, seq)}
}

// Applied is the sequence the DB has committed.
func (e *Engine) Applied() (uint64, error) {
	if e.over != nil {
		return readApplied(e.over)
	}
	return e.db.Applied()
}

// view opens a snapshot of tenant; the caller closes it. An unknown tenant is not_found. Over
// the live DB, the projector's published state spares the reads of the applied sequence and of
// the tenant's version when the snapshot holds exactly that state, and queries share one
// snapshot while no batch commits (engine_snapshot.go).
func (e *Engine) view(tenant string) (*view, error) {
	var (
		snap reader
		own  *pebble.Snapshot
		pub  *published
	)
	var mods *modLog
	var shared *sharedSnapshot
	if p, ok := e.waiter.(*Projector); ok && p.db == e.db {
		if shared = e.db.shared.current(p); shared != nil {
			snap, pub = shared.snap, shared.pub
		} else {
			own, pub = p.snapshot()
			snap = own
		}
		if pub != nil {
			mods = p.mods
		}
	} else if e.over != nil {
		snap = e.over // an as_of state: it does not change while read
	} else {
		own = e.db.pb.NewSnapshot()
		snap = own
	}
	v := views.Get().(*view)
	*v = view{e: e, snap: snap, shared: shared, tenant: tenant, mods: mods, kbuf: v.kbuf[:0]}
	if own != nil {
		v.own = own
	}
	var err error
	if pub != nil {
		v.seq = pub.applied
		if seq, ok := pub.tenants[tenant]; ok {
			v.t = e.cachedTenant(tenant, seq)
		}
	} else if v.seq, err = readApplied(snap); err != nil {
		v.close()
		return nil, err
	}
	if v.t == nil {
		if v.t, err = e.tenant(snap, tenant); err != nil {
			v.close()
			return nil, err
		}
	}
	if !v.t.Exists {
		v.close()
		return nil, aggregates.Errorf(aggregates.CodeNotFound, "no tenant %s", tenant)
	}
	v.tid = tenant
	if v.t.ID == tenant {
		v.tid = v.t.ID
	}
	return v, nil
}

// decodeTenant decodes val, the tenant id's stored value, or takes it from the cache shared with
// other engines.
func (e *Engine) decodeTenant(id string, val []byte) (*aggregates.Tenant, error) {
	shared := e.opts.Tenants
	if shared != nil {
		if t := shared.get(id, val); t != nil {
			return t, nil
		}
	}
	t, err := decodeTenant(val)
	if err != nil {
		return nil, err
	}
	if shared != nil {
		shared.put(id, val, t)
	}
	return t, nil
}

// cachedTenant returns the tenant decoded at seq, or nil.
func (e *Engine) cachedTenant(id string, seq uint64) *aggregates.Tenant {
	c, ok := (*e.tenants.Load())[id]
	if !ok || c.seq != seq {
		return nil
	}
	return c.v.(*aggregates.Tenant)
}

// tenant returns the tenant's state in snap, decoding it only when its stored sequence differs
// from the cached one.
func (e *Engine) tenant(snap reader, id string) (*aggregates.Tenant, error) {
	val, closer, err := snap.Get(tenantKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, aggregates.Errorf(aggregates.CodeNotFound, "no tenant %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("projections: read tenant %s: %w", id, err)
	}
	defer closer.Close()
	seq, _, err := decodeSeq(val)
	if err != nil {
		return nil, err
	}
	if t := e.cachedTenant(id, seq); t != nil {
		return t, nil
	}
	t, err := e.decodeTenant(id, val)
	if err != nil {
		return nil, err
	}
	e.tmu.Lock()
	// Keep the newest: a slow reader of an older snapshot must not evict it.
	if c, ok := (*e.tenants.Load())[id]; !ok || c.seq < seq {
		m := maps.Clone(*e.tenants.Load())
		m[id] = decodedEntry{seq: seq, v: t}
		e.tenants.Store(&m)
	}
	e.tmu.Unlock()
	return t, nil
}
