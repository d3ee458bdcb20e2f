package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
)

// Which logs make up a history, and the events of a page.

// historyRanges opens the logs that make up the history asked for, after checking that the
// tenant and the principal or record exist.
func historyRanges(r pebble.Reader, tenant string, req HistoryRequest, lo, hi uint64) ([]*logRange, error) {
	if ok, err := has(r, tenantStateKey(tenant)); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFoundf("no tenant %s", tenant)
	}
	own, keep, first, removed, err := subject(r, tenant, req)
	if err != nil {
		return nil, err
	}
	end := hi
	if removed != 0 {
		end = min(hi, removed)
	}
	ownLog, err := newLogRange(r, own, lo, hi, keep)
	if err != nil {
		return nil, err
	}
	// Policy and feature changes concern everyone alive at the time: merged at query time
	// rather than copied into every log.
	wide, err := newLogRange(r, tenantLog(tenant), max(lo, first), end, nil)
	if err != nil {
		ownLog.close()
		return nil, err
	}
	return []*logRange{ownLog, wide}, nil
}

// subject finds the log of the principal or record asked for and its lifetime [first, removed]
// (removed 0: still active), or not_found.
func subject(r pebble.Reader, tenant string, req HistoryRequest) (own []byte, keep func(logEntry) logEntry, first, removed uint64, err error) {
	id := req.Principal
	if req.Record != nil {
		id = req.Record.ID
	}
	switch {
	case req.Record != nil && aggregates.IsUnitRecordType(req.Record.Type):
		own = recordLog(tenant, req.Record.Type, id)
		first, err = firstSeq(r, own)
		if err == nil && first == 0 {
			err = notFoundf("no %s %s in tenant %s", req.Record.Type, id, tenant)
		}
		return own, nil, first, 0, err
	case req.Record == nil || aggregates.IsPrincipalRecordType(req.Record.Type):
		ps, err := readState[principalState](r, principalStateKey(tenant, id))
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if ps == nil || ps.First == 0 || (req.Record != nil && aggregates.PrincipalRecordType(ps.Kind) != req.Record.Type) {
			return nil, nil, 0, 0, notFoundf("no principal %s in tenant %s", id, tenant)
		}
		if req.Record != nil {
			keep = ownOnly
		}
		return principalLog(tenant, id), keep, ps.First, ps.Removed, nil
	}
	rs, err := readState[recordState](r, recordStateKey(tenant, req.Record.Type, id))
	if err != nil {
		return nil, nil, 0, 0, err
	}
	if rs == nil || !rs.Exists {
		return nil, nil, 0, 0, notFoundf("no record %s %s in tenant %s", req.Record.Type, id, tenant)
	}
	return recordLog(tenant, req.Record.Type, id), nil, rs.First, rs.Removed, nil
}

func firstSeq(r pebble.Reader, prefix []byte) (uint64, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("replay: scan %q: %w", prefix, err)
	}
	defer it.Close()
	if !it.First() {
		return 0, nil
	}
	return logSeq(prefix, it.Key())
}

func has(r pebble.Reader, k []byte) (bool, error) {
	_, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("replay: read %q: %w", k, err)
	}
	closer.Close()
	return true, nil
}

// readState decodes the state under k, nil when there is none.
func readState[T any](r pebble.Reader, k []byte) (*T, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay: read %q: %w", k, err)
	}
	defer closer.Close()
	return decodeJSON[T](v, string(k))
}

// pageEvents fetches the page's messages from the stream and keeps the envelopes it shows.
func (s *Service) pageEvents(ctx context.Context, page []pick) ([]HistoryEvent, error) {
	seqs := make([]uint64, len(page))
	for i, p := range page {
		seqs[i] = p.seq
	}
	msgs, err := s.getter.getAll(ctx, seqs)
	if err != nil {
		return nil, unavailable(err, "history: read events from the stream")
	}
	out := []HistoryEvent{}
	for i, p := range page {
		for _, it := range p.entry {
			if it.I >= len(msgs[i].Events) {
				return nil, fmt.Errorf("replay: audit entry of seq %d names envelope %d of %d", p.seq, it.I, len(msgs[i].Events))
			}
			e := msgs[i].Events[it.I]
			e.CommandHash = "" // an internal digest, not part of the wire format
			out = append(out, HistoryEvent{Envelope: e, Why: it.Why})
		}
	}
	return out, nil
}
