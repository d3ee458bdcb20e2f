package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// eventLog is replay's copy of the stream's messages, undecoded, keyed by sequence
// (DATA/replay/events), from which as_of reads the events after its checkpoint instead of
// the stream. A direct get of a message not in nats-server's cache loads (and with S2
// decompresses) the whole 8 MB block holding it, and keeps it 10 s: at 10^6 records that was
// most of an answer's time (p99 95 ms of the fetch alone) and gigabytes of heap under
// random moments. Pebble reads only the blocks of the range asked (up to --checkpoint-every
// messages of all tenants, of which a read keeps its tenant's).
//
// Keys in stream order make the log append-only for Pebble: each flush writes a table after
// every other, which no compaction rewrites. Keyed by tenant first, as it was, every flush
// overlapped the whole log, and Pebble rewrote it again and again, with zstd: an import of the
// compare shape compacted 236 MB for 54 MB flushed, some 4 % of acld's CPU in the commands
// workload after a restart. A log written by that layout keeps the messages it holds there,
// read as before (logSplitKey).
//
// It follows the stream as the audit index does (through acld's shared consumer: each message is
// decoded once for all followers, and the log encodes it again as it was appended); an answer at
// a moment the log has not reached yet reads the stream as before. The stream stays the only
// source of truth: the log can be deleted (acld stopped) and is filled again from sequence 1.
// It has no WAL: a crash loses whole batches after the last flush, which the stream gives again;
// the applied sequence is the last message's (no key written by every batch, which would make
// every flush overlap the table holding it).
type eventLog struct {
	pb      *pebble.DB
	dir     string
	applied projections.Watermark
	split   uint64 // the first sequence of the stream-order layout (logSplitKey)
	// batch is apply's, reset for each call: a new batch for each message a live log follows
	// grew a new buffer (Pebble's pool is emptied by every collection), ~0.4 KB a command.
	// A batch Pebble keeps by reference (half the memtable, logMemtable) is larger than what
	// Reset keeps for reuse (1 MiB), as for the projector's (projections.OpenDB).
	batch *pebble.Batch
}

// logAppliedKey holds the last sequence a log of the tenant-first layout held (eventLogKey);
// '!' starts no tenant token.
var logAppliedKey = []byte("!applied")

// logSplitKey holds the first sequence of the stream-order layout (logSeqKey): a log created
// empty has 1; one the tenant-first layout wrote, the sequence after its last message.
var logSplitKey = []byte("!split")

// logSeqPrefix starts the stream-order keys: a byte before '!' and every tenant token.
const logSeqPrefix = 0x01

const (
	// logMemtable is the log's memtable: the smallest (a larger batch is written as a table of
	// its own).
	logMemtable = 4 << 20
)

// logFollows: whether Start keeps the log following the stream (tests fill it themselves).
var logFollows = true

// openEventLog opens (creating if needed) the log in dir, reading through cache (nil: its own).
func openEventLog(dir string, cache *pebble.Cache) (*eventLog, error) {
	if cache == nil {
		cache = pebble.NewCache(8<<20 + projections.MemtableReserve(logMemtable))
		defer cache.Unref()
	}
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       logMemtable,
		DisableWAL:         true,
		Logger:             quietLogger{},
	}
	// Read in ranges, written once and kept: zstd (about a third smaller than Snappy) in large
	// blocks; no filters (no point reads).
	for i := range opts.Levels {
		opts.Levels[i].BlockSize = 64 << 10
		opts.Levels[i].Compression = func() *block.CompressionProfile { return block.GoodCompression }
	}
	pb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("replay: open event log %s: %w", dir, err)
	}
	l := &eventLog{pb: pb, dir: dir}
	if err := l.load(); err != nil {
		pb.Close()
		return nil, err
	}
	return l, nil
}

// load reads the split and the applied sequence, writing the split when there is none yet.
func (l *eventLog) load() error {
	old, ok, err := l.meta(logAppliedKey)
	if err != nil {
		return err
	}
	l.applied.Advance(old)
	split, ok, err := l.meta(logSplitKey)
	if err != nil {
		return err
	}
	if !ok || old >= split {
		// A new log, or one of the tenant-first layout: what comes next is in stream order.
		// Flushed at once, before any message of the new layout, which it tells how to read.
		// An applied sequence at or after the split: an acld of the tenant-first layout ran on
		// this log after the split was written (a downgrade), and wrote the messages after
		// its own applied sequence, which was the split's, up to old. So the tenant-first
		// keys hold every message up to old: the split moves after it, and the stream-order
		// keys below it, if any, are never read.
		split = old + 1
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], split)
		if err := l.pb.Set(logSplitKey, v[:], pebble.NoSync); err != nil {
			return fmt.Errorf("replay: event log: %w", err)
		}
		if err := l.pb.Flush(); err != nil {
			return fmt.Errorf("replay: event log: %w", err)
		}
	}
	l.split = split
	it, err := l.pb.NewIter(&pebble.IterOptions{LowerBound: []byte{logSeqPrefix}, UpperBound: []byte{logSeqPrefix + 1}})
	if err != nil {
		return fmt.Errorf("replay: event log: %w", err)
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("replay: malformed event log key %q", k)
		}
		l.applied.Advance(binary.BigEndian.Uint64(k[1:]))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("replay: read event log applied sequence: %w", err)
	}
	return nil
}

// meta reads one of the log's sequences kept under a key of its own.
func (l *eventLog) meta(key []byte) (uint64, bool, error) {
	v, closer, err := l.pb.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("replay: read event log %s: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("replay: event log %s of %d bytes", key, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// Applied is the last sequence the log holds: it has every message up to it.
func (l *eventLog) Applied() uint64 { return l.applied.Load() }

// close writes the memtable out (there is no WAL) and closes the log.
func (l *eventLog) close() error {
	if err := l.pb.Flush(); err != nil {
		l.pb.Close()
		return fmt.Errorf("replay: flush event log %s: %w", l.dir, err)
	}
	if err := l.pb.Close(); err != nil {
		return fmt.Errorf("replay: close event log %s: %w", l.dir, err)
	}
	return nil
}

// logTenant is the tenant token of an event subject (acl.events.<tenant>....); "" for any other.
func logTenant(subject string) string {
	rest, ok := strings.CutPrefix(subject, events.Prefix+".")
	if !ok {
		return ""
	}
	t, _, _ := strings.Cut(rest, ".")
	return t
}

// eventLogKey is "<tenant>\x00" then the sequence as 8 big-endian bytes: a tenant's messages
// in stream order, as the tenant-first layout wrote them (below the split).
func eventLogKey(dst []byte, tenant string, seq uint64) []byte {
	dst = append(dst, tenant...)
	dst = append(dst, sep)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// logSeqKey is logSeqPrefix then the sequence as 8 big-endian bytes: the messages in stream
// order (from the split on).
func logSeqKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, logSeqPrefix), seq)
}

// apply writes the messages after the applied sequence in one batch.
func (l *eventLog) apply(msgs []events.Message) error {
	if l.batch == nil {
		l.batch = l.pb.NewBatch()
	} else {
		l.batch.Reset()
	}
	b := l.batch
	applied := l.Applied()
	last := applied
	var k, v []byte
	for _, m := range msgs {
		if m.Seq <= last {
			continue
		}
		raw, err := m.Raw()
		if err != nil {
			return err
		}
		k = logSeqKey(k[:0], m.Seq)
		v = binary.AppendUvarint(v[:0], uint64(len(m.Subject)))
		v = append(v, m.Subject...)
		v = binary.BigEndian.AppendUint64(v, uint64(m.Time.UnixNano()))
		v = append(v, raw.Data...)
		if err := b.Set(k, v, nil); err != nil {
			return fmt.Errorf("replay: event log: %w", err)
		}
		last = m.Seq
	}
	if last == applied {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("replay: commit event log up to %d: %w", last, err)
	}
	l.applied.Advance(last)
	return nil
}

// read returns tenant's messages with from <= seq <= to, decoded, in order; to must be at or
// below Applied.
func (l *eventLog) read(tenant string, from, to uint64) ([]events.Message, error) {
	var out []events.Message
	if from < l.split {
		// Below the split, the tenant-first layout holds the tenant's messages only.
		err := l.scan(eventLogKey(nil, tenant, from), eventLogKey(nil, tenant, min(to, l.split-1)+1), func(k, v []byte) error {
			m, err := decodeLogged(k, v)
			out = append(out, m)
			return err
		})
		if err != nil || to < l.split {
			return out, err
		}
		from = l.split
	}
	// Every tenant's messages: the subject, at the value's start, tells whose each one is
	// before it is decoded.
	prefix := events.Prefix + "." + tenant + "."
	err := l.scan(logSeqKey(nil, from), logSeqKey(nil, to+1), func(k, v []byte) error {
		if !loggedUnder(v, prefix) {
			return nil
		}
		m, err := decodeLogged(k, v)
		out = append(out, m)
		return err
	})
	return out, err
}

// scan calls fn with each entry of the log in [lo, hi).
func (l *eventLog) scan(lo, hi []byte, fn func(k, v []byte) error) error {
	it, err := l.pb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("replay: event log: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("replay: event log %q..%q: %w", lo, hi, err)
	}
	return nil
}

// loggedUnder reports whether the subject of the log entry v starts with prefix.
func loggedUnder(v []byte, prefix string) bool {
	n, w := binary.Uvarint(v)
	return w > 0 && n >= uint64(len(prefix)) && uint64(len(v)-w) >= n && string(v[w:w+len(prefix)]) == prefix
}

// decodeLogged decodes a log entry (its value is the iterator's: the message keeps none of it,
// the envelopes' data is copied by the decoder).
func decodeLogged(k, v []byte) (events.Message, error) {
	bad := func() (events.Message, error) {
		return events.Message{}, fmt.Errorf("replay: malformed event log entry %q", k)
	}
	if len(k) < 9 {
		return bad()
	}
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n+8 {
		return bad()
	}
	subject := string(v[w : w+int(n)])
	ns := int64(binary.BigEndian.Uint64(v[w+int(n):]))
	raw := events.RawMessage{Seq: binary.BigEndian.Uint64(k[len(k)-8:]), Subject: subject,
		Time: time.Unix(0, ns).UTC(), Data: v[w+int(n)+8:]}
	return raw.Decode()
}

// logged is a Reader of one tenant's messages from the log: what replayOnto reads when the
// log holds the whole range.
type logged struct {
	log    *eventLog
	tenant string
}

func (r logged) Read(_ context.Context, from, to uint64, fn func([]events.Message) error) error {
	msgs, err := r.log.read(r.tenant, from, to)
	if err != nil || len(msgs) == 0 {
		return err
	}
	return fn(msgs)
}

// run follows the stream into the log until ctx ends; it heals as the audit index does.
func (l *eventLog) run(ctx context.Context, store Follower, log *slog.Logger) {
	followHealing(ctx, store, l.Applied, l.apply, log, "replay: event log")
}
