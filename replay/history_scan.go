package replay

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// logRange reads one log (a principal's, a record's or the tenant's) between two sequences,
// in stream order, keeping of each entry what keep lets through (nil keeps all).
type logRange struct {
	it     *pebble.Iterator
	prefix []byte
	keep   func(logEntry) logEntry
	hi     uint64

	seq   uint64
	entry logEntry
	ok    bool
	err   error
}

// newLogRange opens a log at [lo, hi] on r. lo > hi gives an empty range.
func newLogRange(r pebble.Reader, prefix []byte, lo, hi uint64, keep func(logEntry) logEntry) (*logRange, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: logKey(prefix, lo), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("replay: scan audit log %q: %w", prefix, err)
	}
	l := &logRange{it: it, prefix: prefix, keep: keep, hi: hi}
	if lo <= hi {
		l.ok = it.First()
		l.settle()
	}
	return l, nil
}

// settle decodes the iterator's position, skipping entries that keep empties, and stops past hi.
func (l *logRange) settle() {
	for ; l.ok; l.ok = l.it.Next() {
		seq, err := logSeq(l.prefix, l.it.Key())
		if err != nil {
			l.err, l.ok = err, false
			return
		}
		if seq > l.hi {
			l.ok = false
			return
		}
		var e logEntry
		if err := json.Unmarshal(l.it.Value(), &e); err != nil {
			l.err, l.ok = fmt.Errorf("replay: decode audit entry %q: %w", l.it.Key(), err), false
			return
		}
		if l.keep != nil {
			e = l.keep(e)
		}
		if len(e) > 0 {
			l.seq, l.entry = seq, e
			return
		}
	}
}

func (l *logRange) next() {
	l.ok = l.it.Next()
	l.settle()
}

func (l *logRange) close() error {
	if err := l.it.Close(); err != nil && l.err == nil {
		l.err = fmt.Errorf("replay: close audit scan: %w", err)
	}
	return l.err
}

// pick is one message of a history page and the envelopes of it that the page shows.
type pick struct {
	seq   uint64
	entry logEntry
}

// mergePage merges the ranges by sequence (one sequence in several logs becomes one pick with
// the union of their entries) and takes messages while their events fit in limit; the first
// message is always taken, so a page never splits a message. more reports that events remain.
func mergePage(ranges []*logRange, limit int) (page []pick, more bool, err error) {
	count := 0
	for {
		var min uint64
		found := false
		for _, l := range ranges {
			if l.ok && (!found || l.seq < min) {
				min, found = l.seq, true
			}
		}
		if !found {
			break
		}
		var e logEntry
		for _, l := range ranges {
			if l.ok && l.seq == min {
				e = e.merge(l.entry)
			}
		}
		if len(page) > 0 && count+len(e) > limit {
			more = true
			break
		}
		page = append(page, pick{seq: min, entry: e})
		count += len(e)
		for _, l := range ranges {
			if l.ok && l.seq == min {
				l.next()
			}
		}
	}
	for _, l := range ranges {
		if err := l.close(); err != nil {
			return nil, false, err
		}
	}
	return page, more, nil
}

// ownOnly keeps the envelopes of the aggregate itself: a principal's record shows who can see
// the principal, which its roles do not change.
func ownOnly(e logEntry) logEntry {
	var out logEntry
	for _, it := range e {
		if it.Why == "" {
			out = append(out, it)
		}
	}
	return out
}
