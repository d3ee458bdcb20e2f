package replay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// linkDrift is what checkLinkCounts found: the records whose count of linking records
// (recordState.LinkedBy) is not the number of reverse links under them (tagLinkedFrom).
type linkDrift struct {
	records int    // how many
	first   string // the first of them, and its two figures
	links   int    // the reverse links compared
}

// checkLinkCounts compares every record's count of linking records with its reverse links.
// The writer keeps them equal (relink); an index written before the fix of duplicate links
// (f63ac36) may not: a record whose links named one record twice, then none, took 2 from that
// record's count for the 1 it had added, and a count of 0 with links under it makes a change
// of its assignees skip the linking records' histories. Only a rebuild mends it.
//
// One pass over the record states and one over the reverse links, side by side: both tables
// are in (type, id) order within a tenant. It stops early (ok false) when stop closes or the
// iteration fails.
func checkLinkCounts(pb *pebble.DB, stop <-chan struct{}) (d linkDrift, ok bool) {
	// One snapshot for both: the follower writes counts and links in the same batches, and
	// two iterators opened a batch apart would see a count without its link.
	snap := pb.NewSnapshot()
	defer snap.Close()
	states, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefixEnd([]byte("!"))}) // past !applied
	if err != nil {
		return d, false
	}
	defer states.Close()
	links, err := snap.NewIter(nil)
	if err != nil {
		return d, false
	}
	defer links.Close()
	n := 0
	for more := states.First(); more; {
		tenant := string(states.Key()[:bytes.IndexByte(states.Key(), sep)])
		sp, lp := akey(nil, tenant, string(tagRecord)), akey(nil, tenant, string(tagLinkedFrom))
		// lrest is what follows lp in the reverse link at hand: <via type> <via id> <type> <id>.
		lrest := func() []byte {
			if k := links.Key(); bytes.HasPrefix(k, lp) {
				return k[len(lp):]
			}
			return nil
		}
		lok := links.SeekGE(lp) && lrest() != nil
		for more = states.SeekGE(sp); more && bytes.HasPrefix(states.Key(), sp); more = states.Next() {
			via := states.Key()[len(sp):] // <type> <id>
			// Reverse links of records with no state (none the writer makes) are passed over.
			for lok && bytes.Compare(lrest(), via) < 0 {
				lok = links.Next() && lrest() != nil
			}
			count := 0
			for lok && bytes.HasPrefix(lrest(), via) {
				count++
				lok = links.Next() && lrest() != nil
			}
			d.links += count
			v, err := states.ValueAndErr()
			if err != nil {
				return d, false
			}
			by, err := linkedBy(v)
			if err != nil {
				return d, false
			}
			if by != count {
				if d.records++; d.first == "" {
					d.first = fmt.Sprintf("%s/%s: counts %d linking records, %d link to it", tenant, printKey(via), by, count)
				}
			}
			if n++; n%4096 == 0 {
				select {
				case <-stop:
					return d, false
				default:
				}
			}
		}
		more = states.SeekGE(append([]byte(tenant), sep+1)) // the next tenant
	}
	return d, states.Error() == nil && links.Error() == nil
}

// reportDrift logs, once the check at open has ended (or never, if ctx ends first), the records
// whose counts of linking records are wrong, and the command that mends them.
func (a *Audit) reportDrift(ctx context.Context, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-a.scanned:
	}
	if d := a.drift; d.records > 0 {
		log.Error("replay: audit index: records count linking records that do not link to them, or miss some "+
			"(an index written before the duplicate-links fix, f63ac36): histories of linking records may miss "+
			"changes of who is assigned to what they link to; stop acld and run aclctl rebuild --model audit --replace "+a.dir,
			"records", d.records, "first", d.first)
	}
}

// linkedByField is how a record state's JSON holds its count (audit_encode.go; encoding/json
// writes it alike). It occurs nowhere else in a valid state: a string holds no bare quote.
var linkedByField = []byte(`,"linked_by":`)

// linkedBy reads a record state's count of linking records without decoding the rest: decoding
// every state (decodeState) took the check 1.1-1.5 s at the compare shape (200,000 records),
// this 0.40-0.44 s.
func linkedBy(v []byte) (int, error) {
	i := bytes.Index(v, linkedByField)
	if i < 0 {
		return 0, nil // omitted when 0
	}
	rest := v[i+len(linkedByField):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, fmt.Errorf("replay: malformed record state %q", v)
	}
	n, err := strconv.Atoi(string(rest[:end]))
	if err != nil {
		return 0, fmt.Errorf("replay: malformed record state %q: %w", v, err)
	}
	return n, nil
}
