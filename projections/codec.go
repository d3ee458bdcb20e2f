package projections

import (
	"encoding/json"
	"fmt"

	"github.com/acl-es/acl/aggregates"
)

// States are stored as JSON after an 8-byte sequence (keys.go, encodeSeq). The maps that Apply
// writes to are made non-nil on decode, and the command memory (json:"-") is never stored.

func encodeTenant(t *aggregates.Tenant) ([]byte, error) {
	c := *t
	c.SeatHolders = nil // kept under seat keys, so that a seat change does not rewrite the policy
	body, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("projections: encode tenant %s: %w", t.ID, err)
	}
	return encodeSeq(t.Seq, body), nil
}

func decodeTenant(v []byte) (*aggregates.Tenant, error) {
	_, body, err := decodeSeq(v)
	if err != nil {
		return nil, err
	}
	t := &aggregates.Tenant{}
	if err := json.Unmarshal(body, t); err != nil {
		return nil, fmt.Errorf("projections: decode tenant: %w", err)
	}
	if t.Roles == nil {
		t.Roles = map[string]*aggregates.Role{}
	}
	for _, r := range t.Roles {
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
	t.SeatHolders = map[string]string{}
	t.Commands = map[string]aggregates.CommandResult{}
	return t, nil
}

func encodePrincipal(p *aggregates.Principal) ([]byte, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("projections: encode principal %s: %w", p.ID, err)
	}
	return encodeSeq(p.Seq, body), nil
}

func decodePrincipal(v []byte) (*aggregates.Principal, error) {
	_, body, err := decodeSeq(v)
	if err != nil {
		return nil, err
	}
	p := &aggregates.Principal{}
	if err := json.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("projections: decode principal: %w", err)
	}
	if p.Prov == nil {
		p.Prov = map[string]string{}
	}
	p.Commands = map[string]aggregates.CommandResult{}
	return p, nil
}

func encodeRecord(r *aggregates.Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("projections: encode record %s/%s: %w", r.Type, r.ID, err)
	}
	return encodeSeq(r.Seq, body), nil
}

func decodeRecord(v []byte) (*aggregates.Record, error) {
	_, body, err := decodeSeq(v)
	if err != nil {
		return nil, err
	}
	r := &aggregates.Record{}
	if err := json.Unmarshal(body, r); err != nil {
		return nil, fmt.Errorf("projections: decode record: %w", err)
	}
	if r.Prov == nil {
		r.Prov = map[string]string{}
	}
	r.Commands = map[string]aggregates.CommandResult{}
	return r, nil
}
