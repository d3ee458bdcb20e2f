package main

import (
	"time"

	"github.com/acl-es/acl/events"
)

// bulkQuiet is how long after its last batch request a bulk load counts as running: longer
// than an importer takes between two batches (it reads the next while one is in flight).
const bulkQuiet = 500 * time.Millisecond

// bulkLoad is what the read model's projector and the audit index yield to while an import
// runs (--bulk-lag; README, Round 9: import): nil when they follow every append.
func (m *Main) bulkLoad() *events.BulkLoad {
	if m.Config.BulkLag == 0 {
		return nil
	}
	return &events.BulkLoad{MaxLag: m.Config.BulkLag, Quiet: bulkQuiet}
}
