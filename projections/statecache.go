package projections

import "github.com/acl-es/acl/aggregates"

// stateCache keeps the projector's committed aggregate states decoded, so that the next event of
// an aggregate costs no read and no decode. Only the projector's goroutine uses it. States are
// mutated in place by the batch being built, so a batch that fails to commit must reset it.
type stateCache struct {
	max     int
	tenants map[string]*aggregates.Tenant
	aggs    map[string]any // state key -> *aggregates.Principal or *aggregates.Record
}

func newStateCache(max int) *stateCache {
	c := &stateCache{max: max}
	c.reset()
	return c
}

func (c *stateCache) reset() {
	c.tenants = map[string]*aggregates.Tenant{}
	c.aggs = map[string]any{}
}

func (c *stateCache) tenant(id string) *aggregates.Tenant { return c.tenants[id] }

func (c *stateCache) putTenant(id string, t *aggregates.Tenant) { c.tenants[id] = t }

func (c *stateCache) get(k string) any { return c.aggs[k] }

// getBytes is get without converting k to a string.
func (c *stateCache) getBytes(k []byte) any { return c.aggs[string(k)] }

// put keeps a state; when full, the cache starts over rather than tracking recency, which
// costs one read per aggregate after each reset and nothing per event.
func (c *stateCache) put(k string, v any) {
	if len(c.aggs) >= c.max {
		c.aggs = make(map[string]any, c.max) // it filled once: it will again, without growing
	}
	c.aggs[k] = v
}
