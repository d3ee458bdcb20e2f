package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Tenant snapshots. A tenant's subject holds a seat change per access level change, so its
// history grows with the principals' churn (92k messages at 10^5 principals): replaying it took
// about 2 s and made the server read every block of the stream. The service therefore keeps a
// snapshot of each tenant's state (events.Snapshots: outside the event stream, one object per
// subject) and a first load reads the snapshot, then only the messages after its sequence.
//
// The snapshot is derived and never trusted beyond that: one that is missing, of another
// version or subject, undecodable, or taken of another stream falls back to the full history.
// The appends still expect the subject's last sequence, so a wrong state could only cost a
// conflict, and it is built by the same Apply from the same events as a full load (the tests
// compare the two).

// snapshotVersion is the version of the stored form; a reader ignores any other.
const snapshotVersion = 1

// tenantSnapshot is the stored form of a tenant's state. Commands is the idempotency memory,
// which the state's JSON leaves out.
type tenantSnapshot struct {
	V        int                                 `json:"v"`
	Subject  string                              `json:"subject"`
	Tenant   *aggregates.Tenant                  `json:"tenant"`
	Commands map[string]aggregates.CommandResult `json:"commands"`
}

func encodeTenantSnapshot(subject string, t *aggregates.Tenant) ([]byte, error) {
	return json.Marshal(tenantSnapshot{V: snapshotVersion, Subject: subject, Tenant: t, Commands: t.Commands})
}

// decodeTenantSnapshot reads a snapshot of the tenant of subject taken at seq. The maps that
// Apply writes into are never nil afterwards.
func decodeTenantSnapshot(data []byte, subject, id string, seq uint64) (*aggregates.Tenant, error) {
	var s tenantSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", subject, err)
	}
	switch {
	case s.V != snapshotVersion:
		return nil, fmt.Errorf("snapshot of %s: version %d, want %d", subject, s.V, snapshotVersion)
	case s.Subject != subject || s.Tenant == nil || s.Tenant.ID != id:
		return nil, fmt.Errorf("snapshot of %s: it is of %q", subject, s.Subject)
	case s.Tenant.Seq != seq:
		return nil, fmt.Errorf("snapshot of %s: state at %d, stored as %d", subject, s.Tenant.Seq, seq)
	}
	t := s.Tenant
	t.Commands = s.Commands
	if t.Commands == nil {
		t.Commands = map[string]aggregates.CommandResult{}
	}
	if t.Roles == nil {
		t.Roles = map[string]*aggregates.Role{}
	}
	for id, r := range t.Roles {
		if r == nil {
			return nil, fmt.Errorf("snapshot of %s: role %s is null", subject, id)
		}
		if r.GrantEvents == nil {
			r.GrantEvents = map[string]string{}
		}
	}
	if t.Units == nil {
		t.Units = map[string]string{}
	}
	if t.Seats == nil {
		t.Seats = map[string]int{}
	}
	if t.SeatHolders == nil {
		t.SeatHolders = map[string]string{}
	}
	return t, nil
}

// snapshotWriteTimeout bounds one snapshot write, and so how long Close may wait for one.
const snapshotWriteTimeout = 30 * time.Second

// snapshotter reads and writes the snapshots of one service.
type snapshotter struct {
	snaps  *events.Snapshots
	after  int // events a load or the writes may add to a tenant before a new snapshot
	logger *slog.Logger
	ctx    context.Context // ends when the service closes; writes stop with it

	mu      sync.Mutex
	writing map[string]bool // subjects with a write in flight
	wg      sync.WaitGroup
}

// load returns the tenant's snapshot, or nil when there is no usable one (logged unless there
// is simply none).
func (sn *snapshotter) load(ctx context.Context, e *entry) *aggregates.Tenant {
	data, seq, err := sn.snaps.Get(ctx, e.subject)
	if err == nil {
		var t *aggregates.Tenant
		if t, err = decodeTenantSnapshot(data, e.subject, e.ref.ID, seq); err == nil {
			return t
		}
	}
	if !errors.Is(err, events.ErrNoSnapshot) {
		sn.logger.Warn("tenant snapshot not used; loading the whole history", "subject", e.subject, "err", err)
	}
	return nil
}

// added counts n events applied to the entry's state since its last snapshot, and writes a
// new snapshot of st in the background when they are more than the snapshot's own size allows:
// at least after events, and at least half the commands the tenant remembers, so that the
// cost of writing snapshots stays proportional to the events (not to events times size).
func (sn *snapshotter) added(e *entry, st any, n int) {
	t, ok := st.(*aggregates.Tenant)
	if !ok || n <= 0 {
		return
	}
	if e.sinceSnap.Add(int64(n)) < int64(max(sn.after, len(t.Commands)/2)) {
		return
	}
	sn.mu.Lock()
	if sn.writing[e.subject] || sn.ctx.Err() != nil {
		sn.mu.Unlock()
		return
	}
	sn.writing[e.subject] = true
	sn.wg.Add(1)
	sn.mu.Unlock()
	e.sinceSnap.Store(0)
	go func() {
		defer func() {
			sn.mu.Lock()
			delete(sn.writing, e.subject)
			sn.mu.Unlock()
			sn.wg.Done()
		}()
		// st is a published state: nobody writes into it any more, so it is read here unlocked.
		data, err := encodeTenantSnapshot(e.subject, t)
		if err == nil {
			ctx, cancel := context.WithTimeout(sn.ctx, snapshotWriteTimeout)
			err = sn.snaps.Put(ctx, e.subject, t.Seq, data)
			cancel()
		}
		if err != nil && sn.ctx.Err() == nil {
			sn.logger.Warn("tenant snapshot not written", "subject", e.subject, "seq", t.Seq, "err", err)
		}
	}()
}

// wait waits for the writes in flight (after the service's context ended, they stop soon).
func (sn *snapshotter) wait() { sn.wg.Wait() }
