package replay

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/events"
)

// The audit index's format. Format 1 (every index before round 18, which wrote no format key)
// kept the records linking to a record as keys of their own, <t> L <via type> <via id> <type>
// <id>, and only their count in the linked record's state ("linked_by"): each change of the
// assignees of a linked record ran a Pebble iterator over that range (8-10 µs of acld's CPU a
// command in the commands workload, seeking in every level-0 table), and each link changed was a
// key written or deleted. Format 2 keeps the list in the linked record's state (LinkedFrom) and
// writes no 'L' key. Nothing else differs: the logs, and so every answer, are the same.
//
// openAudit moves a format-1 index to format 2 in place (migrateLinks): for each linked record,
// in one batch, its state gets the list its 'L' keys make and they are deleted. An index created
// empty is of format 2 from the start. The index holds no WAL, so a crash loses whole batches
// after the last flush: whatever the crash left, each linked record is either moved (its list in
// its state, no 'L' key left) or not (its 'L' keys and a state without the list), and the next
// open moves what is left; the format key is written after the last batch, then flushed.
//
// An older release opening a format-2 index would read no 'L' key and miss the link entries of
// later changes: after going back to one, delete the index (acld rebuilds it from the stream).

// auditFormatKey holds the index's format as decimal text; none: format 1.
var auditFormatKey = []byte("!format")

// auditFormat is the format this release writes.
const auditFormat = 2

// migrateBatchBytes is the size of a migration batch: a few thousand linked records each
// (a variable for tests).
var migrateBatchBytes = 1 << 20

// migrateHook, when set (tests), is called after each migration batch commits; an error stops
// the migration there, as a crash would.
var migrateHook func(pb *pebble.DB, batches int) error

// readFormat returns the index's format: 1 when it has no format key.
func readFormat(pb *pebble.DB) (int, error) {
	v, closer, err := pb.Get(auditFormatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replay: read audit index format: %w", err)
	}
	defer closer.Close()
	f, err := strconv.Atoi(string(v))
	if err != nil || f < 1 {
		return 0, fmt.Errorf("replay: audit index format %q", v)
	}
	return f, nil
}

// upgradeFormat brings the index to auditFormat; it returns how many linked records it moved.
func upgradeFormat(pb *pebble.DB) (int, error) {
	f, err := readFormat(pb)
	if err != nil {
		return 0, err
	}
	switch {
	case f == auditFormat:
		return 0, nil
	case f > auditFormat:
		return 0, fmt.Errorf("replay: audit index of format %d, newer than this release's %d: delete it to rebuild it from the stream", f, auditFormat)
	}
	moved, err := migrateLinks(pb)
	if err != nil {
		return moved, err
	}
	if err := pb.Set(auditFormatKey, []byte(strconv.Itoa(auditFormat)), pebble.NoSync); err != nil {
		return moved, fmt.Errorf("replay: write audit index format: %w", err)
	}
	if err := pb.Flush(); err != nil { // no WAL: the format key only once its batch is in a table
		return moved, fmt.Errorf("replay: flush audit index format: %w", err)
	}
	return moved, nil
}

// migrateLinks moves every 'L' key of a format-1 index into the state of the record it names
// (see above), tenant by tenant; it returns how many records it moved.
func migrateLinks(pb *pebble.DB) (int, error) {
	it, err := pb.NewIter(&pebble.IterOptions{LowerBound: prefixEnd([]byte("!"))}) // past !applied
	if err != nil {
		return 0, fmt.Errorf("replay: migrate audit links: %w", err)
	}
	defer it.Close()
	states, err := pb.NewIter(&pebble.IterOptions{LowerBound: prefixEnd([]byte("!"))})
	if err != nil {
		return 0, fmt.Errorf("replay: migrate audit links: %w", err)
	}
	defer states.Close()
	b := pb.NewBatch()
	defer func() { b.Close() }()
	var (
		moved, batches int
		via            []byte // the linked record's state key of the group in refs
		refs           []events.RecordRef
		enc            []byte
	)
	// move writes the group's state and deletes its 'L' keys (already in b).
	move := func() error {
		if via == nil {
			return nil
		}
		// The states are read by a second iterator, not a Get each: the linked records come in
		// key order, so each seek goes forward from the last, in blocks it mostly has read
		// (a Get each took 13.5 s for the 63,325 of the compare shape at load 22).
		s := &recordState{}
		if states.SeekGE(via) && bytes.Equal(states.Key(), via) {
			v, err := states.ValueAndErr()
			if err == nil {
				err = decodeState(v, s) // "linked_by" is no field any more: dropped
			}
			if err != nil {
				return fmt.Errorf("replay: migrate audit links: read %q: %w", via, err)
			}
		} else if err := states.Error(); err != nil {
			return fmt.Errorf("replay: migrate audit links: read %q: %w", via, err)
		} // else none: never so, link wrote the state with its count
		s.LinkedFrom = refs
		if enc, err = encodeValue(enc[:0], s); err != nil {
			return fmt.Errorf("replay: migrate audit links: encode %q: %w", via, err)
		}
		if err := b.Set(via, enc, nil); err != nil {
			return fmt.Errorf("replay: migrate audit links: %w", err)
		}
		moved++
		via, refs = nil, nil
		if b.Len() < migrateBatchBytes {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("replay: migrate audit links: commit: %w", err)
		}
		b.Reset()
		if batches++; migrateHook != nil {
			return migrateHook(pb, batches)
		}
		return nil
	}
	for ok := it.First(); ok; {
		k := it.Key()
		tenant := string(k[:max(0, bytes.IndexByte(k, sep))])
		prefix := akey(nil, tenant, string(tagLinkedFrom))
		for ok = it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			parts, err := lastParts(prefix, it.Key(), 4)
			if err != nil {
				return moved, err
			}
			key := recordStateKey(tenant, parts[0], parts[1])
			if !bytes.Equal(key, via) {
				if err := move(); err != nil {
					return moved, err
				}
				via = key
			}
			// Key order is (type, id) order: the list comes sorted, as link keeps it.
			refs = append(refs, events.RecordRef{Type: parts[2], ID: parts[3]})
			if err := b.Delete(it.Key(), nil); err != nil {
				return moved, fmt.Errorf("replay: migrate audit links: %w", err)
			}
		}
		if err := move(); err != nil {
			return moved, err
		}
		ok = it.SeekGE(append([]byte(tenant), sep+1)) // the next tenant
	}
	if err := it.Error(); err != nil {
		return moved, fmt.Errorf("replay: migrate audit links: %w", err)
	}
	if !b.Empty() {
		if err := b.Commit(pebble.NoSync); err != nil {
			return moved, fmt.Errorf("replay: migrate audit links: commit: %w", err)
		}
	}
	return moved, nil
}
