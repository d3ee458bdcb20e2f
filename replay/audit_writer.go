package replay

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/events"
)

// auditWriter turns a run of messages into one Pebble batch: log entries, the states that
// decide who an event concerns, and the applied sequence. States are read through the index's
// cache of committed states, mutated in place and written once at flush; holder and reverse-link
// keys are also kept in an overlay, so that a later event of the same batch sees them.
type auditWriter struct {
	pb      *pebble.DB
	b       *pebble.Batch
	cache   *auditCache
	states  *stateFilter
	touched map[string]any        // state key -> *tenantState, *principalState or *recordState
	prior   map[string]priorState // state key -> the state as loaded, when the index held it
	keys    map[string]bool       // holder and reverse-link keys set (true) or deleted in the batch
	// under lists the keys of keys by the prefix a scan asks for (a role's holders, the records
	// linking to one), so that a scan visits the batch's keys under its prefix only: visiting
	// all of them made each scan cost the batch's size (a fifth of a rebuild's CPU).
	under   map[string][]string
	entries map[string]logEntry
	enc     []byte       // encodeValue's buffer
	kb      []byte       // the buffer entry's keys are built in
	reads   uint64       // states read from Pebble
	puts    []byte       // the cache forms of the states flush hands to the cache
	put     []pendingPut // which
}

// priorState is a state's cache form as loaded, and whether it came from the cache.
type priorState struct {
	enc    string
	cached bool
}

// pendingPut is a state the cache gets once the batch commits: its key and its cache form in
// auditWriter.puts.
type pendingPut struct {
	k          string
	start, end int
}

// newAuditWriter writes into b, an empty batch of the index (the index reuses one, so that its
// buffer does not grow again for every batch).
func newAuditWriter(pb *pebble.DB, b *pebble.Batch, cache *auditCache, states *stateFilter) *auditWriter {
	return &auditWriter{pb: pb, b: b, cache: cache, states: states, touched: map[string]any{},
		prior: map[string]priorState{}, keys: map[string]bool{}, under: map[string][]string{}, entries: map[string]logEntry{}}
}

// apply folds the envelopes of one message into the batch.
func (w *auditWriter) apply(m events.Message) error {
	for i, e := range m.Events {
		var err error
		switch e.Aggregate.Kind {
		case events.KindTenant:
			err = w.tenantEvent(m.Seq, i, e)
		case events.KindPrincipal:
			err = w.principalEvent(m.Seq, i, e)
		case events.KindRecord:
			err = w.recordEvent(m.Seq, i, e)
		}
		if err != nil {
			return fmt.Errorf("replay: audit event %s (%s) at seq %d: %w", e.ID, e.Type, m.Seq, err)
		}
	}
	return nil
}

// entry adds envelope i, for reason why, to the log whose prefix the caller built in w.kb, at
// seq. A prefix and a key allocated for every entry were a fifth of what the index allocated
// in the commands workload; the map keeps a copy of the key.
func (w *auditWriter) entry(prefix []byte, seq uint64, i int, why string) {
	k := binary.BigEndian.AppendUint64(prefix, seq)
	w.entries[string(k)] = w.entries[string(k)].add(i, why)
	w.kb = k[:0]
}

func (w *auditWriter) tenantEvent(seq uint64, i int, e events.Envelope) error {
	switch e.Type {
	case events.TenantCreated, events.SubscriptionSet, events.PolicySet, events.UnitDefined,
		events.RoleDefined, events.RoleDeleted, events.RolePermissionGranted, events.RolePermissionRevoked:
	default:
		return nil // seats and reservations change nobody's access
	}
	d, err := events.Decode(e)
	if err != nil {
		return err
	}
	ts, err := w.tenant(e.Tenant)
	if err != nil {
		return err
	}
	switch v := d.(type) {
	case events.TenantCreatedV1:
		ts.ImplyTypes = implyTypes(v.Policy)
	case events.SubscriptionSetV1:
		f := slices.Sorted(slices.Values(v.Features))
		f = slices.Compact(f)
		if !slices.Equal(f, ts.Features) {
			w.entry(appendTenantLog(w.kb[:0], e.Tenant), seq, i, whySubscription)
		}
		ts.Features = f
	case events.PolicySetV1:
		w.entry(appendTenantLog(w.kb[:0], e.Tenant), seq, i, whyPolicy)
		ts.ImplyTypes = implyTypes(v.Policy)
	case events.UnitDefinedV1:
		// A unit is a record of its kind's type: its definition starts its log.
		w.entry(appendRecordLog(w.kb[:0], e.Tenant, v.Unit.Kind, v.Unit.ID), seq, i, "")
	case events.RoleDefinedV1:
		return w.toHolders(e.Tenant, v.Role, seq, i)
	case events.RoleDeletedV1:
		return w.toHolders(e.Tenant, v.Role, seq, i)
	case events.RolePermissionGrantedV1:
		return w.toHolders(e.Tenant, v.Role, seq, i)
	case events.RolePermissionRevokedV1:
		return w.toHolders(e.Tenant, v.Role, seq, i)
	}
	return nil
}

// toHolders adds a role change to the log of every active holder of the role.
func (w *auditWriter) toHolders(tenant, role string, seq uint64, i int) error {
	prefix := holdersPrefix(tenant, role)
	return w.scan(prefix, func(k []byte) error {
		parts, err := lastParts(prefix, k, 1)
		if err != nil {
			return err
		}
		w.entry(appendPrincipalLog(w.kb[:0], tenant, parts[0]), seq, i, whyRolePrefix+role)
		return nil
	})
}

func (w *auditWriter) principalEvent(seq uint64, i int, e events.Envelope) error {
	t, id := e.Tenant, e.Aggregate.ID
	w.entry(appendPrincipalLog(w.kb[:0], t, id), seq, i, "")
	switch e.Type {
	case events.PrincipalRegistered, events.RoleAssigned, events.RoleRevoked, events.PrincipalRemoved:
	default:
		return nil
	}
	d, err := events.Decode(e)
	if err != nil {
		return err
	}
	ps, err := w.principal(t, id)
	if err != nil {
		return err
	}
	switch v := d.(type) {
	case events.PrincipalRegisteredV1:
		ps.Kind = v.Kind
		if ps.First == 0 {
			ps.First = seq
		}
	case events.RoleAssignedV1:
		if !slices.Contains(ps.Roles, v.Role) {
			ps.Roles = append(ps.Roles, v.Role)
			slices.Sort(ps.Roles)
		}
		if ps.Removed == 0 {
			return w.set(holdersPrefix(t, v.Role), holderKey(t, v.Role, id))
		}
	case events.RoleRevokedV1:
		ps.Roles = slices.DeleteFunc(ps.Roles, func(r string) bool { return r == v.Role })
		return w.del(holdersPrefix(t, v.Role), holderKey(t, v.Role, id))
	case events.PrincipalRemovedV1:
		ps.Removed = seq
		for _, r := range ps.Roles {
			if err := w.del(holdersPrefix(t, r), holderKey(t, r, id)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *auditWriter) recordEvent(seq uint64, i int, e events.Envelope) error {
	t, typ, id := e.Tenant, e.Aggregate.Type, e.Aggregate.ID
	w.entry(appendRecordLog(w.kb[:0], t, typ, id), seq, i, "")
	d, err := events.Decode(e)
	if err != nil {
		return err
	}
	rs, err := w.record(t, typ, id)
	if err != nil {
		return err
	}
	before := rs.clone()
	switch v := d.(type) {
	case events.RecordRegisteredV1:
		rs.Exists = true
		if rs.First == 0 {
			rs.First = seq
		}
		setBody(rs, v.RecordBody)
	case events.RecordUpdatedV1:
		setBody(rs, v.RecordBody)
	case events.RecordAssignedV2:
		rs.Assignees = normalAssignees(append(rs.Assignees, events.Assignee{Principal: v.Principal, Relation: v.Relation}))
	case events.RecordUnassignedV2:
		a := events.Assignee{Principal: v.Principal, Relation: v.Relation}
		rs.Assignees = slices.DeleteFunc(rs.Assignees, func(x events.Assignee) bool { return x == a })
	case events.RecordRemovedV1:
		rs.Removed = seq
	}
	ref := typ + "/" + id
	for _, p := range union(before.tied(), rs.tied()) {
		if !slices.Equal(before.ties(p), rs.ties(p)) {
			w.entry(appendPrincipalLog(w.kb[:0], t, p), seq, i, whyRecordPrefix+ref)
		}
	}
	if err := w.relink(t, typ, id, before, rs); err != nil {
		return err
	}
	if err := w.toClients(t, typ, id, seq, i, before.Client, rs.Client); err != nil {
		return err
	}
	if rs.LinkedBy == 0 || slices.Equal(before.assigned(), rs.assigned()) {
		return nil
	}
	// Who is assigned to this record decides who a link rule lets see the records linking to it
	// (and, through an implication, their clients).
	prefix := linkedFromPrefix(t, typ, id)
	return w.scan(prefix, func(k []byte) error {
		parts, err := lastParts(prefix, k, 2)
		if err != nil {
			return err
		}
		w.entry(appendRecordLog(w.kb[:0], t, parts[0], parts[1]), seq, i, whyLinkPrefix+ref)
		linking, err := w.record(t, parts[0], parts[1])
		if err != nil {
			return err
		}
		return w.toClients(t, parts[0], parts[1], seq, i, linking.Client)
	})
}

// toClients adds a change of a record of type typ to the log of the client records it names,
// when an implication of the policy makes a permission on typ give one on the client (TO-4f).
func (w *auditWriter) toClients(t, typ, id string, seq uint64, i int, clients ...string) error {
	if typ == clientType {
		return nil
	}
	ts, err := w.tenant(t)
	if err != nil {
		return err
	}
	if !slices.Contains(ts.ImplyTypes, typ) {
		return nil
	}
	for k, c := range clients {
		if c != "" && !slices.Contains(clients[:k], c) {
			w.entry(appendRecordLog(w.kb[:0], t, clientType, c), seq, i, whyClientPrefix+typ+"/"+id)
		}
	}
	return nil
}

// clientType is the record type of clients: an implication names the client of a record.
const clientType = "client"

func setBody(rs *recordState, b events.RecordBody) {
	rs.Client = b.Client
	rs.Owner = b.Owner
	rs.Assignees = normalAssignees(b.Assignees)
	rs.Links = slices.Clone(b.Links)
}

// relink keeps the reverse links of an active record equal to its links.
func (w *auditWriter) relink(t, typ, id string, before, after *recordState) error {
	var was, now []events.RecordRef
	if before.Exists && before.Removed == 0 {
		was = before.Links
	}
	if after.Exists && after.Removed == 0 {
		now = after.Links
	}
	// A record's links may name one record twice (nothing removes duplicates from a body): each
	// distinct target counts once, or [x x] -> [] would take 2 from x's LinkedBy for the 1 that
	// [] -> [x x] added, and x's count would read 0 while a record still links to it.
	for i, l := range was {
		if !slices.Contains(was[:i], l) && !slices.Contains(now, l) {
			if err := w.link(t, l, typ, id, -1); err != nil {
				return err
			}
		}
	}
	for i, l := range now {
		if !slices.Contains(now[:i], l) && !slices.Contains(was, l) {
			if err := w.link(t, l, typ, id, +1); err != nil {
				return err
			}
		}
	}
	return nil
}

// link adds (+1) or removes (-1) the reverse link from via to the record typ/id, and counts it in
// via's state, so that a change of via's assignees scans for linking records only when some are.
func (w *auditWriter) link(t string, via events.RecordRef, typ, id string, delta int) error {
	vs, err := w.record(t, via.Type, via.ID)
	if err != nil {
		return err
	}
	vs.LinkedBy += delta
	prefix, k := linkedFromPrefix(t, via.Type, via.ID), linkedFromKey(t, via.Type, via.ID, typ, id)
	if delta > 0 {
		return w.set(prefix, k)
	}
	return w.del(prefix, k)
}

func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
