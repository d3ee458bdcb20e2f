package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/acl-es/acl/aggregates"
)

// States are stored after an 8-byte sequence (keys.go, encodeSeq): tenants as JSON, principals
// and records in the binary form of codec_binary.go (JSON bodies are still read). The maps that
// Apply writes to are made non-nil on decode, and the command memory is never stored.

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
	return appendPrincipal(binary.BigEndian.AppendUint64(make([]byte, 0, 256), p.Seq), p), nil
}

func decodePrincipal(v []byte) (*aggregates.Principal, error) {
	_, body, err := decodeSeq(v)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 && body[0] == formatBinary1 {
		return readPrincipal(body)
	}
	p := &aggregates.Principal{}
	if err := json.Unmarshal(body, p); err != nil {
		return nil, fmt.Errorf("projections: decode principal: %w", err)
	}
	if p.Prov == nil {
		p.Prov = map[string]string{}
	}
	return p, nil
}

func encodeRecord(r *aggregates.Record) ([]byte, error) {
	return appendRecord(binary.BigEndian.AppendUint64(make([]byte, 0, 256), r.Seq), r), nil
}

func decodeRecord(v []byte) (*aggregates.Record, error) {
	_, body, err := decodeSeq(v)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 && body[0] == formatBinary1 {
		return readRecord(body)
	}
	r := &aggregates.Record{}
	if err := json.Unmarshal(body, r); err != nil {
		return nil, fmt.Errorf("projections: decode record: %w", err)
	}
	if r.Prov == nil {
		r.Prov = map[string]string{}
	}
	return r, nil
}
