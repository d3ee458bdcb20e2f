package projections

import (
	"bytes"
	"sync"

	"github.com/acl-es/acl/aggregates"
)

// TenantCache shares decoded tenants between engines over different models: replay's as_of
// answers each open an engine of their own over a checkpoint, and decoding a tenant's JSON
// (its roles, units and clients) was most of what a check cost there (about 15 % of an as_of
// answer's CPU at 10^6 records, more with its garbage). An entry is found by the tenant's id
// and the bytes stored for it, compared in full: the same bytes decode to the same state
// whatever model holds them (a checkpoint made before a change of format included), and a
// comparison costs a small fraction of a decode. Cached tenants are shared and must not be
// mutated, as with Engine's own cache. Safe for concurrent use.
type TenantCache struct {
	mu      sync.Mutex
	entries []tenantEntry // most recently used first
	bytes   int           // sum of the entries' raw values
	max     int
}

type tenantEntry struct {
	id  string
	raw []byte // the stored value, sequence included
	t   *aggregates.Tenant
}

// NewTenantCache keeps tenants whose stored values sum to at most maxBytes (the most recently
// used one is always kept; a tenant's decoded form takes a few times its stored bytes).
func NewTenantCache(maxBytes int) *TenantCache { return &TenantCache{max: maxBytes} }

// get returns the tenant decoded from val, or nil.
func (c *TenantCache) get(id string, val []byte) *aggregates.Tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.entries {
		if e.id == id && bytes.Equal(e.raw, val) {
			copy(c.entries[1:i+1], c.entries[:i])
			c.entries[0] = e
			return e.t
		}
	}
	return nil
}

// put keeps t, decoded from val (copied), dropping the least recently used entries past the
// bound.
func (c *TenantCache) put(id string, val []byte, t *aggregates.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.id == id && bytes.Equal(e.raw, val) {
			return // another engine decoded it meanwhile
		}
	}
	c.entries = append(c.entries, tenantEntry{})
	copy(c.entries[1:], c.entries)
	c.entries[0] = tenantEntry{id: id, raw: bytes.Clone(val), t: t}
	c.bytes += len(val)
	for len(c.entries) > 1 && c.bytes > c.max {
		last := len(c.entries) - 1
		c.bytes -= len(c.entries[last].raw)
		c.entries[last] = tenantEntry{}
		c.entries = c.entries[:last]
	}
}
