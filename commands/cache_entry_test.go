package commands

import (
	"log/slog"
	"testing"

	"github.com/acl-es/acl/events"
)

// TestCacheEntryLookup: an entry is found again by its aggregate without a string made for the
// lookup (every command looks up its aggregates; each lookup made its subject before), and a
// new entry's subject is the aggregate's subject.
func TestCacheEntryLookup(t *testing.T) {
	c := newCache(nil, 100, slog.Default())
	ref := events.RecordAggregate("case", "c1")
	e, err := c.entry("acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := events.Subject("acme", ref); e.subject != want || e.ref != ref {
		t.Fatalf("entry %q %+v; want %q %+v", e.subject, e.ref, want, ref)
	}
	if _, err := c.entry("acme", events.RecordAggregate("ca se", "c1")); err == nil {
		t.Fatal("an invalid record type made an entry")
	}
	if n := testing.AllocsPerRun(100, func() {
		if again, err := c.entry("acme", ref); err != nil || again != e {
			t.Fatalf("entry again: %p, %v; want %p", again, err, e)
		}
	}); n != 0 {
		t.Fatalf("looking up an entry: %.0f allocations", n)
	}
}
