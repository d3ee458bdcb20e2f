package replay

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/aggregates/aggregatestest"
	"github.com/acl-es/acl/events"
)

// toFormat1 rewrites the index in dir as the releases before format 2 wrote it: a key <t> L
// <via type> <via id> <type> <id> for each record in a state's list, the state with their count
// ("linked_by", where the list was) instead, and no format key. It returns the 'L' keys written.
func toFormat1(t *testing.T, dir string) int {
	t.Helper()
	pb, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	b := pb.NewBatch()
	it, err := pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		end := bytes.IndexByte(k, sep)
		if end < 0 || len(k) < end+3 || k[end+1] != tagRecord || k[end+2] != sep {
			continue
		}
		var s recordState
		if err := decodeState(it.Value(), &s); err != nil {
			t.Fatal(err)
		}
		if len(s.LinkedFrom) == 0 {
			continue
		}
		parts, err := lastParts(k[:end+3], k, 2)
		if err != nil {
			t.Fatal(err)
		}
		tenant := string(k[:end])
		for _, l := range s.LinkedFrom {
			links++
			b.Set(akey(nil, tenant, string(tagLinkedFrom), parts[0], parts[1], l.Type, l.ID), nil, nil)
		}
		raw, err := encodeValue(nil, &s)
		if err != nil {
			t.Fatal(err)
		}
		i, j := bytes.Index(raw, []byte(`,"linked_from":`)), bytes.Index(raw, []byte(`,"first":`))
		if i < 0 || j < i {
			t.Fatalf("state %s", raw)
		}
		old := string(raw[:i]) + `,"linked_by":` + strconv.Itoa(len(s.LinkedFrom)) + string(raw[j:])
		b.Set(bytes.Clone(k), []byte(old), nil)
	}
	b.Delete(auditFormatKey, nil)
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	return links
}

// auditKeysOf counts the keys of the index in dir with tag tag, and returns its format key's value.
func auditKeysOf(t *testing.T, dir string, tag byte) (int, string) {
	t.Helper()
	pb, err := openReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	it, err := pb.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n, format := 0, ""
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if bytes.Equal(k, auditFormatKey) {
			format = string(it.Value())
		}
		if end := bytes.IndexByte(k, sep); end >= 0 && end+1 < len(k) && k[end+1] == tag {
			n++
		}
	}
	return n, format
}

// TestAuditFormat1Migrates: an index of format 1 (its linking records as 'L' keys), written
// halfway through a random history, opens as format 2. The first open stops after a few
// batches of the migration, as a crash would (one flushed, the others lost); the next opens
// migrate the rest, follow the rest of the stream, and the index equals, byte for byte, the one
// rebuilt from the stream. It fails without the migration (the 'L' keys stay, and the states
// lack their lists, so later changes of a linked record's assignees miss the linking records'
// logs), and when a batch splits a linked record's keys (a crash then drops the rest of its
// list).
func TestAuditFormat1Migrates(t *testing.T) {
	s, msgs, dir, rnd := linkHistory(t)
	half := len(msgs) / 2
	if err := auditApply(t, dir, rnd, msgs[:half]).Close(); err != nil {
		t.Fatal(err)
	}
	links := toFormat1(t, dir)
	if links < 5 {
		t.Fatalf("the history links %d records: too few to test", links)
	}
	if n, format := auditKeysOf(t, dir, tagLinkedFrom); n != links || format != "" {
		t.Fatalf("format-1 index: %d 'L' keys (want %d), format %q", n, links, format)
	}

	defer func(n int) { migrateBatchBytes, migrateHook = n, nil }(migrateBatchBytes)
	migrateBatchBytes = 1 // a batch for each linked record
	crash := errors.New("crash")
	migrateHook = func(pb *pebble.DB, batches int) error {
		switch batches {
		case 1:
			return pb.Flush()
		case 3:
			return crash // batches 2 and 3 lost with the memtable
		}
		return nil
	}
	if _, err := OpenAudit(dir); !errors.Is(err, crash) {
		t.Fatalf("open with a crash in the migration: %v", err)
	}
	n, format := auditKeysOf(t, dir, tagLinkedFrom)
	if n == 0 || n == links || format != "" {
		t.Fatalf("after the crash: %d 'L' keys of %d, format %q: want some moved, not all", n, links, format)
	}
	migrateHook = nil
	a, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := half; i < len(msgs); {
		j := min(len(msgs), i+1+rnd.IntN(8))
		if err := a.ApplyMessages(msgs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n, format := auditKeysOf(t, dir, tagLinkedFrom); n != 0 || format != fmt.Sprint(auditFormat) {
		t.Fatalf("migrated: %d 'L' keys left, format %q", n, format)
	}
	auditEqualsRebuild(t, s, dir)
}

// TestAuditRefusesNewerFormat: an index of a format this release does not know is not opened
// (it could hold what this release's writer would miss).
func TestAuditRefusesNewerFormat(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.pb.Set(auditFormatKey, []byte(strconv.Itoa(auditFormat+1)), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAudit(dir); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a newer format: %v", err)
	}
}

// linkHistory is auditHistory's stack with many records linking to others: a random history of
// 200 commands, then 600 random registrations, updates and removals of invoices linking to cases
// (and of cases linking to themselves), and assignments of those cases, which reach the linking
// invoices' logs; commands Decide rejects are skipped.
func linkHistory(t *testing.T) (*stack, []events.Message, string, *rand.Rand) {
	s := startStack(t, Options{})
	newRandomHistory(s.d, 41).run(200)
	rnd := rand.New(rand.NewPCG(13, 14))
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, rnd.IntN(n)) }
	principal := func() string { return aggregatestest.Principals[rnd.IntN(len(aggregatestest.Principals))] }
	links := func() []events.RecordRef {
		var out []events.RecordRef
		for range rnd.IntN(3) {
			out = append(out, events.RecordRef{Type: "case", ID: pick("c", 6)})
		}
		return out
	}
	for range 600 {
		var cmd aggregates.Command
		switch n := rnd.IntN(10); {
		case n < 3:
			cmd = &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "invoice", ID: pick("i", 40),
				Client: aggregatestest.Clients[rnd.IntN(len(aggregatestest.Clients))], Links: links()}}
		case n < 4:
			cmd = &aggregates.UpdateRecord{RecordBody: events.RecordBody{Type: "invoice", ID: pick("i", 40), Links: links()}}
		case n < 5:
			cmd = &aggregates.RemoveRecord{Type: "invoice", ID: pick("i", 40)}
		case n < 6:
			id := pick("c", 6)
			var self []events.RecordRef
			if rnd.IntN(2) == 0 {
				self = []events.RecordRef{{Type: "case", ID: id}}
			}
			cmd = &aggregates.RegisterRecord{RecordBody: events.RecordBody{Type: "case", ID: id, Links: self,
				Assignees: []events.Assignee{{Principal: principal()}}}}
		case n < 8:
			cmd = &aggregates.AssignRecord{Type: "case", ID: pick("c", 6), Principal: principal()}
		default:
			cmd = &aggregates.UnassignRecord{Type: "case", ID: pick("c", 6), Principal: principal(), Relation: events.DefaultRelation}
		}
		s.d.try("acme", aggregatestest.Admin, cmd)
	}
	s.sync(t)
	return s, s.d.msgs, filepath.Join(t.TempDir(), "audit"), rand.New(rand.NewPCG(15, 16))
}
