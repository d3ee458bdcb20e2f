package commands

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unsafe"

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

// The stored form, version 2 (version 1 was all JSON and 4x slower to decode):
//
//	"ACLT" 2
//	str subject
//	str JSON of the tenant without SeatHolders (Commands is never in its JSON)
//	uvarint n, n times: str principal, str level          (SeatHolders)
//	uvarint n, n times: str command id, uvarint seq, str hash, uvarint k, k times str event id
//
// where str is a uvarint length and the bytes. Seat holders and command ids are the bulk (one
// per principal, one per command that wrote the tenant), hence the flat form.
const (
	snapshotMagic   = "ACLT"
	snapshotVersion = 2
)

// encodeTenantSnapshot encodes t with the commands it remembers (t.Commands; a cached state's
// are in its entry's index: use entry.withCommands).
func encodeTenantSnapshot(subject string, t *aggregates.Tenant) ([]byte, error) {
	core := *t
	core.SeatHolders = nil
	js, err := json.Marshal(&core)
	if err != nil {
		return nil, err
	}
	size := len(snapshotMagic) + 1 + len(subject) + len(js) + 30 + commandsSize(t.Commands)
	for p, l := range t.SeatHolders {
		size += len(p) + len(l) + 4
	}
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = appendStr(b, subject)
	b = appendStr(b, string(js))
	b = binary.AppendUvarint(b, uint64(len(t.SeatHolders)))
	for p, l := range t.SeatHolders {
		b = appendStr(appendStr(b, p), l)
	}
	b = appendCommands(b, t.Commands, nil)
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// snapReader reads the flat parts of a snapshot. Its strings are slices of the snapshot's
// bytes (no allocation per string, no copy of the whole); the state keeps those bytes alive,
// which is about the size its strings would take anyway.
type snapReader struct {
	s   string
	err error
	// ids reads the ids of a spilled state of version 3 (spill_ids.go); off: plain strings.
	ids idReader
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflows 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.s = r.s[i+1:]
			return v
		}
	}
	r.err = errors.New("truncated or bad number")
	return 0
}

// count reads a count of items that take at least min bytes each.
func (r *snapReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.s)/min) {
		r.err = errors.New("count beyond the data")
		return 0
	}
	return int(n)
}

func (r *snapReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)) {
		r.err = errors.New("truncated")
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

// decodeTenantSnapshot reads a snapshot of the tenant of subject taken at seq. It takes data
// over: the state's strings point into it, so nobody may write to it afterwards. The maps that
// Apply writes into are never nil afterwards.
func decodeTenantSnapshot(data []byte, subject, id string, seq uint64) (*aggregates.Tenant, error) {
	if len(data) < len(snapshotMagic)+1 || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("snapshot of %s: not a tenant snapshot", subject)
	}
	if v := data[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("snapshot of %s: version %d, want %d", subject, v, snapshotVersion)
	}
	rest := data[len(snapshotMagic)+1:]
	r := &snapReader{s: unsafe.String(unsafe.SliceData(rest), len(rest))}
	if got := r.str(); r.err == nil && got != subject {
		return nil, fmt.Errorf("snapshot of %s: it is of %q", subject, got)
	}
	js := r.str()
	if r.err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", subject, r.err)
	}
	var t aggregates.Tenant
	if err := json.Unmarshal([]byte(js), &t); err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", subject, err)
	}
	switch {
	case t.ID != id:
		return nil, fmt.Errorf("snapshot of %s: it is of tenant %q", subject, t.ID)
	case t.Seq != seq:
		return nil, fmt.Errorf("snapshot of %s: state at %d, stored as %d", subject, t.Seq, seq)
	}
	n := r.count(2)
	t.SeatHolders = make(map[string]string, n)
	for range n {
		p := r.str()
		t.SeatHolders[p] = r.str()
	}
	t.Commands = r.commands()
	if r.err == nil && r.s != "" {
		r.err = errors.New("data after the end")
	}
	if r.err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", subject, r.err)
	}
	if t.Roles == nil {
		t.Roles = map[string]*aggregates.Role{}
	}
	for id, role := range t.Roles {
		if role == nil {
			return nil, fmt.Errorf("snapshot of %s: role %s is null", subject, id)
		}
		if role.GrantEvents == nil {
			role.GrantEvents = map[string]string{}
		}
	}
	if t.Units == nil {
		t.Units = map[string]string{}
	}
	if t.Seats == nil {
		t.Seats = map[string]int{}
	}
	return &t, nil
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
	if e.sinceSnap.Add(int64(n)) < int64(max(sn.after, e.cmds.len()/2)) {
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
		wc, err := e.withCommands(t)
		var data []byte
		if err == nil {
			data, err = encodeTenantSnapshot(e.subject, wc)
		}
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
