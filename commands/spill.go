package commands

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The spill: principal and record states on disk, behind the cache.
//
// The cache holds a bounded number of states in memory (Options.CacheSize). Without the spill
// a state it dropped was read again from the event stream, one direct get per subject, for
// which nats-server loads the 8 MB message block that holds it and keeps it for seconds: with
// 10^4 cached states of 2*10^5 records that made commands run at 400/s and the server hold
// 232 MB of blocks. With it, the cache writes every principal and record state it loads or
// publishes to a local Pebble (Options.StateDir) and reads a state it dropped from there, in
// microseconds, with memory bounded by Pebble's small cache.
//
// It is the cache continued on disk, and it survives restarts. Its follower reads every
// message of the stream after the spill's position (kept in the spill) and brings a spilled
// state older than a message of its subject up to it, starting the states of aggregates
// registered meanwhile (so the spill fills from a stream loaded without it); until it has read
// up to the stream's end as of the start, the spill is written but not read. A state is spilled only if the follower has
// processed no message of its subject newer than what the state includes (stripes), so a state
// loaded or written while another instance wrote the aggregate never outlives that write, across
// a crash included: the spill has no WAL, and after a crash Pebble holds what it last flushed,
// states and position alike, and the follower reads on from there. The cache's own invalidations
// (another instance's write, a lost invalidation, a write through an entry dropped and made
// anew since) delete spilled states too, without waiting for the follower; the state of an
// entry dropped while a command used it is kept only if none of them came since it was read
// (cache.orphanLocked). Appends still state their
// expected sequence, so a stale state could cost a conflict and a reload, never a wrong write.
//
// Tenants are not spilled: they are never dropped from the cache.

// spill is the on-disk tier of the cache. The cache's mu orders its writes and the follower's.
type spill struct {
	db   *pebble.DB
	dir  string
	wo   *pebble.WriteOptions
	hits atomic.Int64 // states read back (tests)

	// pos is the follower's position: every message up to it was processed. trusted: it
	// reached the stream's end as of the start, so spilled states may be read.
	pos     atomic.Uint64
	trusted atomic.Bool
	// stripes: per hash of a subject, the highest sequence of a message the follower
	// processed (under cache.mu); two hashes, so that a state is kept unless both of its
	// stripes saw a newer message. During a bulk load a state is kept up to a few thousand
	// messages after the follower may have passed it: one stripe of 4096 refused a fifth of
	// them; two tables of 2^15 with FNV-1a's halves as the two hashes left 0.7 % of the
	// compare shape's records without a spilled state after its import (each then read from
	// the stream by the next command on it: nats-server decompresses an 8 MB block for it);
	// two of 2^17 with maphash left 5 of 203,000 (TestSpillKeepsStatesBehindTheFollower), for
	// 2 MiB instead of 512 KiB.
	stripes [2][spillStripes]uint64
	// done is closed when the follower stopped; nil when it never started.
	done chan struct{}

	// kept: subjects whose state the cache spilled (keep) at a sequence the follower has not
	// processed yet, with that sequence; the spill holds that state or a newer one (delete and
	// clear forget it). The follower then knows the state includes the message without a
	// Pebble Get: for this instance's own writes that Get was 6 % of acld's CPU in an import.
	// Under cache.mu, like processed (the sequence of the last message processed).
	kept      map[string]uint64
	processed uint64
	// awaited: the other way round, messages the follower read before the cache spilled the
	// state that includes them, of subjects the cache holds (a command of this instance is
	// most likely writing them: the bulk path has up to batchWindow appends in flight before
	// it takes their answers). The follower leaves them to the cache's keep instead of
	// bringing the spilled state up itself and having the cache write the same state again
	// (that double work was most of the follower's cost in an import). keptLocked and delete
	// settle them; those still awaited maxAwaited messages later the follower brings up
	// itself (dueLocked), and the position it stores stays below the oldest one, so that
	// after a crash it reads them again. awaitQ lists them in stream order (settled ones are
	// skipped). Under cache.mu.
	awaited map[string][]events.Message
	awaitQ  []awaitNote

	// seen holds every subject the spill may have a state of: those set since it opened, and,
	// once scanned is closed and known is true, those it held when it opened. has answers a
	// subject it lacks without reading Pebble.
	seen    subjectFilter
	scanned chan struct{}
	known   atomic.Bool
}

const (
	// spillCacheBytes is the spill's Pebble block cache: the states it serves are read once
	// and then cached in memory again, so a larger cache mostly holds copies.
	spillCacheBytes = 8 << 20
	spillMemtable   = 4 << 20
	// SpillMemtableReserve is what the spill's memtables take from its block cache: Pebble
	// reserves each memtable's size there, the one being written and the one kept for reuse
	// (projections.MemtableReserve); a cache given as Options.BlockCache must be that much larger.
	SpillMemtableReserve = 2 * spillMemtable
	spillStripes         = 1 << 17
	// spillFilterBits sizes seen: 2 MiB, about 1 % false positives at 1.7*10^6 subjects.
	spillFilterBits = 1 << 24
	// The spill's own keys sort before every subject, and so do the moved commands'
	// (spill_moved.go), which clear leaves.
	spillPosKey    = "!pos"
	spillStreamKey = "!stream"
	movedPrefix    = "#"
	movedEnd       = "$"
)

// openSpill opens the spill in dir, keeping its states if they were kept of the stream
// identified by stream (its creation time), and emptying it otherwise. shared, when set, is its
// block cache (Options.BlockCache); nil: one of its own.
func openSpill(dir, stream string, shared *pebble.Cache) (*spill, error) {
	cache := shared
	if cache == nil {
		cache = pebble.NewCache(spillCacheBytes + SpillMemtableReserve)
		defer cache.Unref()
	}
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       spillMemtable,
		// No WAL: after a crash Pebble has what it flushed last, states and position of one
		// moment, and the follower goes on from that position.
		DisableWAL: true,
		Logger:     quietLogger{},
		// A deeper level 0 before compacting: the spill's states are overwritten at random, so
		// each compaction of level 0 rewrites the whole bottom level under it. With Pebble's
		// default of 4, an import of 2*10^5 records had its compactions write 483 MB for 120 MB
		// flushed and 56 MB kept; reads stay cheap, each level-0 table's bloom filter cached.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64,
	}
	for i := range opts.Levels {
		// A state never spilled (the first command on an aggregate) must not read a block of
		// every level to find out.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Pebble's default compression, not zstd: the spill is written on every command, and with
	// zstd in its bottom levels its compactions took 8 % of acld's CPU under the commands
	// workload (for some 10 MB less disk at 2*10^5 records).
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("commands: open the state spill %s: %w", dir, err)
	}
	sp := &spill{db: db, dir: dir, wo: pebble.NoSync}
	pos, ok := sp.meta(spillPosKey)
	if id, _ := sp.meta(spillStreamKey); id != stream || !ok {
		err := errors.Join(sp.clear(), db.DeleteRange([]byte(movedPrefix), []byte(movedEnd), sp.wo),
			db.Set([]byte(spillStreamKey), []byte(stream), sp.wo), sp.setPos(0))
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("commands: empty the state spill %s: %w", dir, err)
		}
		pos = ""
	}
	if pos != "" {
		n, k := binary.Uvarint([]byte(pos))
		if k <= 0 {
			_ = db.Close()
			return nil, fmt.Errorf("commands: the state spill %s: bad position", dir)
		}
		sp.pos.Store(n)
	}
	sp.seen = newSubjectFilter(spillFilterBits)
	sp.scanned = make(chan struct{})
	go sp.scan()
	return sp, nil
}

// scan adds the subjects the spill holds to seen (those set meanwhile add themselves).
func (sp *spill) scan() {
	defer close(sp.scanned)
	it, err := sp.db.NewIter(&pebble.IterOptions{LowerBound: []byte("a"), UpperBound: []byte{0xff}})
	if err != nil {
		return
	}
	for it.First(); it.Valid(); it.Next() {
		sp.seen.add(it.Key())
	}
	if it.Close() == nil {
		sp.known.Store(true)
	}
}

func (sp *spill) meta(key string) (string, bool) {
	v, closer, err := sp.db.Get([]byte(key))
	if err != nil {
		return "", false
	}
	defer closer.Close()
	return string(v), true
}

func (sp *spill) setPos(seq uint64) error {
	return sp.db.Set([]byte(spillPosKey), binary.AppendUvarint(nil, seq), sp.wo)
}

// stripeOf returns the subject's stripe in each of the two tables. The two must be as good as
// independent: FNV-1a's low and high halves were not for subjects that differ in their last
// characters only (sequential ids), and a state is refused when both its stripes saw a newer
// message (see TestSpillKeepsStatesBehindTheFollower). The stripes live only in memory, so the
// seed may change at every start.
func stripeOf(subject string) [2]int {
	v := maphash.String(stripeSeed, subject)
	return [2]int{int(v % spillStripes), int((v >> 32) % spillStripes)}
}

var stripeSeed = maphash.MakeSeed()

// processedLocked is the follower's work for one message: a spilled state of its subject older
// than it is brought up to it (the message is the next of its subject: the state includes
// every earlier one, see mayKeepLocked), and a registration of an aggregate the spill does not
// hold starts its state. So the spill of an instance that started on a stream loaded without
// it (aclbench's fast path, or before the spill existed) fills as its follower reads the stream,
// and another instance's writes keep spilled states current instead of dropping them. A state
// the spill does not hold and a message that does not register it are left alone: the
// aggregate's earlier messages are not in the spill. cached: the cache holds an entry of the
// message's subject, so its own write of the state is likely on the way (see awaited).
func (sp *spill) processedLocked(m events.Message, cached bool) error {
	for t, i := range stripeOf(m.Subject) {
		sp.stripes[t][i] = max(sp.stripes[t][i], m.Seq)
	}
	sp.processed = max(sp.processed, m.Seq)
	if at, ok := sp.kept[m.Subject]; ok {
		if at >= m.Seq {
			if at == m.Seq {
				delete(sp.kept, m.Subject)
			}
			return nil // it includes the message (this instance wrote it)
		}
		delete(sp.kept, m.Subject)
	}
	if len(m.Events) == 0 || m.Events[0].Aggregate.Kind == events.KindTenant {
		return nil
	}
	if err := sp.dueLocked(m.Seq); err != nil {
		return err
	}
	wait := cached && sp.trusted.Load() && len(sp.awaitQ) < maxAwaited
	if prior, ok := sp.awaited[m.Subject]; ok && !wait {
		// Brought up in order: the earlier ones first.
		delete(sp.awaited, m.Subject)
		for _, pm := range prior {
			if err := sp.bringUpLocked(pm); err != nil {
				return err
			}
		}
	}
	if wait {
		if sp.awaited == nil {
			sp.awaited = map[string][]events.Message{}
		}
		sp.awaited[m.Subject] = append(sp.awaited[m.Subject], m)
		sp.awaitQ = append(sp.awaitQ, awaitNote{subject: m.Subject, seq: m.Seq})
		return nil
	}
	return sp.bringUpLocked(m)
}

// awaitNote is one awaited message: its subject and sequence.
type awaitNote struct {
	subject string
	seq     uint64
}

// maxAwaited bounds the awaited messages, and how many messages after one the follower waits
// for the cache to spill its state: twice the bulk path's window of appends in flight.
const maxAwaited = 2 * batchWindow

// awaitingLocked reports whether n is still awaited (not settled since).
func (sp *spill) awaitingLocked(n awaitNote) bool {
	msgs := sp.awaited[n.subject]
	return len(msgs) > 0 && msgs[0].Seq == n.seq
}

// dueLocked brings up, itself, the awaited messages maxAwaited or more messages before seq,
// and drops the settled ones from the front of the queue.
func (sp *spill) dueLocked(seq uint64) error {
	for len(sp.awaitQ) > 0 {
		n := sp.awaitQ[0]
		if sp.awaitingLocked(n) {
			if seq-n.seq < maxAwaited && len(sp.awaitQ) < maxAwaited {
				return nil
			}
			msgs := sp.awaited[n.subject]
			delete(sp.awaited, n.subject)
			for _, m := range msgs {
				if err := sp.bringUpLocked(m); err != nil {
					return err
				}
			}
		}
		sp.awaitQ[0] = awaitNote{}
		sp.awaitQ = sp.awaitQ[1:]
	}
	sp.awaitQ = nil // its array would keep growing at the back
	return nil
}

// settledLocked is the position the follower may store after processing every message up to
// last: below the oldest message still awaited.
func (sp *spill) settledLocked(last uint64) uint64 {
	for len(sp.awaitQ) > 0 && !sp.awaitingLocked(sp.awaitQ[0]) {
		sp.awaitQ[0] = awaitNote{}
		sp.awaitQ = sp.awaitQ[1:]
	}
	if len(sp.awaitQ) > 0 {
		return min(last, sp.awaitQ[0].seq-1)
	}
	return last
}

// bringUpLocked brings the spilled state of m's subject up to m (see processedLocked).
func (sp *spill) bringUpLocked(m events.Message) error {
	var st any
	v, closer, err := sp.db.Get([]byte(m.Subject))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		switch m.Events[0].Type {
		case events.PrincipalRegistered, events.RecordRegistered:
			st = newState(m.Events[0].Aggregate)
		default:
			return nil
		}
	case err != nil:
		return err
	default:
		at, ok := spilledSeq(v)
		if ok && at >= m.Seq {
			closer.Close()
			return nil // it includes the message (this instance wrote it)
		}
		data := append([]byte(nil), v...)
		closer.Close()
		if st, err = decodeState(data); err != nil {
			return sp.delete(m.Subject)
		}
	}
	for _, env := range m.Events {
		if err := applyEnvelope(st, env); err != nil {
			return sp.delete(m.Subject)
		}
	}
	old := forgetOld(st)
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	return sp.setWith(m.Subject, b, sp.movedBatch(m.Subject, &old))
}

// mayKeepLocked reports whether a state that includes every message of subject up to
// max(seq, pos) may be spilled: the follower processed no newer message of the subject.
func (sp *spill) mayKeepLocked(subject string, seq, pos uint64) bool {
	i, bound := stripeOf(subject), max(seq, pos)
	return sp.stripes[0][i[0]] <= bound || sp.stripes[1][i[1]] <= bound
}

// seqOf returns the sequence of the spilled state of subject, if there is one.
func (sp *spill) seqOf(subject string) (seq uint64, ok bool, err error) {
	if sp.known.Load() && !sp.seen.mayHave([]byte(subject)) {
		return 0, false, nil // never spilled (has: most orphans of an import are)
	}
	v, closer, err := sp.db.Get([]byte(subject))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	seq, ok = spilledSeq(v)
	if !ok {
		return 0, false, fmt.Errorf("commands: the spilled state of %s: not a state", subject)
	}
	return seq, true, nil
}

// get returns the spilled state of subject, or nil.
func (sp *spill) get(subject string) (any, error) {
	v, closer, err := sp.db.Get([]byte(subject))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("commands: read the spilled state of %s: %w", subject, err)
	}
	// The decoded state keeps pointing into its bytes (see decodeState): copy them out of
	// Pebble's block, which closer releases.
	data := append([]byte(nil), v...)
	_ = closer.Close()
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("commands: the spilled state of %s: %w", subject, err)
	}
	sp.hits.Add(1)
	return st, nil
}

// has reports whether subject has a spilled state (false also when the spill cannot be read:
// the caller then reads the stream).
func (sp *spill) has(subject string) bool {
	if sp.known.Load() && !sp.seen.mayHave([]byte(subject)) {
		return false
	}
	_, closer, err := sp.db.Get([]byte(subject))
	if err != nil {
		return false
	}
	_ = closer.Close()
	return true
}

// set stores the encoded state (encodeState) of subject.
func (sp *spill) set(subject string, b []byte) error {
	sp.seen.add([]byte(subject)) // first: has may be asked as soon as Pebble has it
	return sp.db.Set([]byte(subject), b, sp.wo)
}

// keptLocked notes that the cache spilled subject's state at seq (see kept), if the follower
// has yet to process that message: it will, and forget the note then.
func (sp *spill) keptLocked(subject string, seq uint64) {
	if msgs, ok := sp.awaited[subject]; ok {
		// The state includes the awaited messages up to seq: the follower is spared them.
		i := 0
		for i < len(msgs) && msgs[i].Seq <= seq {
			i++
		}
		if i == len(msgs) {
			delete(sp.awaited, subject)
		} else {
			sp.awaited[subject] = msgs[i:]
		}
	}
	if seq <= sp.processed || len(sp.kept) >= maxKept {
		return
	}
	if sp.kept == nil {
		sp.kept = map[string]uint64{}
	}
	sp.kept[subject] = max(sp.kept[subject], seq)
}

// maxKept bounds kept: beyond it (a follower far behind) the follower reads Pebble.
const maxKept = 1 << 15

func (sp *spill) delete(subject string) error {
	delete(sp.kept, subject)
	delete(sp.awaited, subject) // a state the spill does not hold needs no bringing up
	return sp.db.Delete([]byte(subject), sp.wo)
}

// clear deletes every spilled state (subjects sort after the spill's own keys).
func (sp *spill) clear() error {
	clear(sp.kept)
	clear(sp.awaited)
	return sp.db.DeleteRange([]byte("a"), []byte{0xff}, sp.wo)
}

// close flushes (there is no WAL) and closes.
func (sp *spill) close() error {
	if sp.scanned != nil {
		<-sp.scanned
	}
	if err := errors.Join(sp.db.Flush(), sp.db.Close()); err != nil {
		return fmt.Errorf("commands: close the state spill %s: %w", sp.dir, err)
	}
	return nil
}

// quietLogger keeps Pebble's informational lines out of the service's log; errors reach the
// callers of the operation that failed.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// A spilled state, version 1 (written by older releases; spill_state.go has version 2):
//
//	"ACLS" 1 kind uvarint seq
//	str JSON of the state (Commands is never in its JSON)
//	commands (see appendCommands)
//
// where kind is 'p' (principal) or 'r' (record) and str is a uvarint length and the bytes.
const (
	spillMagic   = "ACLS"
	spillVersion = 1
)

func encodeState(st any) ([]byte, error) {
	var b []byte
	switch s := st.(type) {
	case *aggregates.Principal:
		b = make([]byte, 0, flatSize(s.ID, s.Email)+32*(len(s.Units)+len(s.Roles)+len(s.Grants)+len(s.Denied)+2*len(s.Prov))+stateCommandsSize(&s.Commands))
		b = append(b, spillMagic...)
		b = append(b, stateVersion(&s.Commands), 'p')
		b = binary.AppendUvarint(b, s.Seq)
		ids := newIDWriter()
		b = appendStateCommands(appendPrincipal(b, s, ids), &s.Commands, ids)
	case *aggregates.Record:
		b = make([]byte, 0, flatSize(s.Type, s.ID, s.Client, s.Owner)+32*(len(s.Units)+len(s.Assignees)+len(s.Links)+2*len(s.Prov))+stateCommandsSize(&s.Commands))
		b = append(b, spillMagic...)
		b = append(b, stateVersion(&s.Commands), 'r')
		b = binary.AppendUvarint(b, s.Seq)
		ids := newIDWriter()
		b = appendStateCommands(appendRecord(b, s, ids), &s.Commands, ids)
	default:
		return nil, fmt.Errorf("commands: spill a %T", st)
	}
	return b, nil
}

// decodeState reads a spilled state, of version 4, 3, 2 or 1. It takes data over: the state's
// strings point into it (version 1: the commands' strings; version 3: those not written in
// short form).
func decodeState(data []byte) (any, error) {
	if len(data) < len(spillMagic)+2 || string(data[:len(spillMagic)]) != spillMagic {
		return nil, errors.New("not a spilled state")
	}
	v := data[len(spillMagic)]
	if v != spillVersion && v != spillVersionFlat && v != spillVersionIDs && v != spillVersionMoved {
		return nil, fmt.Errorf("version %d, want %d, %d, %d or %d", v, spillVersionMoved, spillVersionIDs, spillVersionFlat, spillVersion)
	}
	moved := v == spillVersionMoved
	kind := data[len(spillMagic)+1]
	rest := data[len(spillMagic)+2:]
	r := &snapReader{s: unsafe.String(unsafe.SliceData(rest), len(rest))}
	if v == spillVersionIDs || moved {
		r.ids.on = true
		r.ids.ids = r.ids.first[:0]
		v = spillVersionFlat // the same fields, their ids read by r.id
	}
	seq := r.uvarint()
	var js string
	if v == spillVersion {
		js = r.str()
	}
	if r.err != nil {
		return nil, r.err
	}
	var st any
	switch {
	case kind == 'p' && v == spillVersionFlat:
		p := readPrincipal(r)
		p.Seq, p.Commands = seq, r.stateCommands()
		if moved {
			p.Commands.SetMoved(r.uvarint())
		}
		st = p
	case kind == 'r' && v == spillVersionFlat:
		rec := readRecord(r)
		rec.Seq, rec.Commands = seq, r.stateCommands()
		if moved {
			rec.Commands.SetMoved(r.uvarint())
		}
		st = rec
	case kind == 'p':
		p := &aggregates.Principal{}
		if err := json.Unmarshal([]byte(js), p); err != nil {
			return nil, err
		}
		if p.Prov == nil {
			p.Prov = map[string]string{}
		}
		p.Commands = r.stateCommands()
		st = p
	case kind == 'r':
		rec := &aggregates.Record{}
		if err := json.Unmarshal([]byte(js), rec); err != nil {
			return nil, err
		}
		if rec.Prov == nil {
			rec.Prov = map[string]string{}
		}
		rec.Commands = r.stateCommands()
		st = rec
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	if r.err == nil && r.s != "" {
		r.err = errors.New("data after the end")
	}
	if r.err != nil {
		return nil, r.err
	}
	if got := stateSeq(st); got != seq {
		return nil, fmt.Errorf("state at %d, stored as %d", got, seq)
	}
	return st, nil
}

// spilledSeq reads the sequence of a spilled state without decoding it.
func spilledSeq(v []byte) (uint64, bool) {
	if len(v) < len(spillMagic)+2 || string(v[:len(spillMagic)]) != spillMagic ||
		v[len(spillMagic)] != spillVersion && v[len(spillMagic)] != spillVersionFlat && v[len(spillMagic)] != spillVersionIDs && v[len(spillMagic)] != spillVersionMoved {
		return 0, false
	}
	seq, k := binary.Uvarint(v[len(spillMagic)+2:])
	return seq, k > 0
}

// appendCommands appends the command ids a state remembers:
//
//	uvarint n, n times: id command id, uvarint seq, id hash, uvarint k, k times id event id
//
// where id is a str, or version 3's form of an id when ids is not nil (spill_ids.go).
func appendCommands(b []byte, cmds map[string]aggregates.CommandResult, ids *idWriter) []byte {
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for id, r := range cmds {
		b = appendCommand(b, id, r, ids)
	}
	return b
}

func appendCommand(b []byte, id string, r aggregates.CommandResult, ids *idWriter) []byte {
	return appendResult(ids.append(b, id), r, ids)
}

// appendResult appends a command's result: uvarint seq, id hash, uvarint k, k times id event.
func appendResult(b []byte, r aggregates.CommandResult, ids *idWriter) []byte {
	b = binary.AppendUvarint(b, r.Seq)
	b = ids.append(b, r.Hash)
	b = binary.AppendUvarint(b, uint64(len(r.Events)))
	for _, ev := range r.Events {
		b = ids.append(b, ev)
	}
	return b
}

// commandsSize is about the bytes appendCommands adds.
func commandsSize(cmds map[string]aggregates.CommandResult) int {
	size := 10
	for id, r := range cmds {
		size += len(id) + len(r.Hash) + 16
		for _, ev := range r.Events {
			size += len(ev) + 2
		}
	}
	return size
}

// commands reads what appendCommands wrote. Every command's event list is clipped, so that
// Apply appending to one never writes into the next one's.
func (r *snapReader) commands() map[string]aggregates.CommandResult {
	n := r.count(4)
	cmds := make(map[string]aggregates.CommandResult, n+1)
	var evs []string // one backing array for every command's event ids
	for range n {
		cid := r.id()
		res := aggregates.CommandResult{Seq: r.uvarint(), Hash: r.id()}
		k := r.count(1)
		if len(evs)+k > cap(evs) {
			evs = make([]string, 0, max(k, min(4096, 2*n)))
		}
		for range k {
			evs = append(evs, r.id())
		}
		if k > 0 {
			res.Events = evs[len(evs)-k : len(evs) : len(evs)]
		}
		cmds[cid] = res
	}
	return cmds
}

// appendStateCommands is appendCommands of what a principal or a record remembers: the same
// bytes for the same commands.
func appendStateCommands(b []byte, cmds *aggregates.Commands, ids *idWriter) []byte {
	b = binary.AppendUvarint(b, uint64(cmds.Len()))
	cmds.Visit(func(id string, r aggregates.CommandResult) { b = appendCommand(b, id, r, ids) })
	if cmds.Moved() > 0 { // version 4 (stateVersion)
		b = binary.AppendUvarint(b, cmds.Moved())
	}
	return b
}

// A spilled state, version 4: version 3 followed by a uvarint, the count of the commands the
// state moved out (spill_moved.go). Written only for such a state, so that a state that moved
// none out reads back in a release that does not know version 4.
const spillVersionMoved = 4

// stateVersion is the version a state with the memory cmds is spilled in.
func stateVersion(cmds *aggregates.Commands) byte {
	if cmds.Moved() > 0 {
		return spillVersionMoved
	}
	return spillVersionIDs
}

// stateCommandsSize is about the bytes appendStateCommands adds.
func stateCommandsSize(cmds *aggregates.Commands) int {
	n := cmds.Len() // most commands: a UUID, a hash and one event id, short (spill_ids.go)
	return 10 + n*(16+32+16+8)
}

// stateCommands reads what appendCommands or appendStateCommands wrote into the form of a
// principal's or a record's memory.
func (r *snapReader) stateCommands() aggregates.Commands {
	var cmds aggregates.Commands
	n := r.count(4)
	cmds.Grow(n)
	var evs []string // one list for every command: Append keeps no string of it
	for range n {
		cid := r.id()
		res := aggregates.CommandResult{Seq: r.uvarint(), Hash: r.id()}
		k := r.count(1)
		evs = evs[:0]
		for range k {
			evs = append(evs, r.id())
		}
		if k > 0 {
			res.Events = evs
		}
		if r.err != nil {
			break
		}
		cmds.Append(cid, res)
	}
	return cmds
}

// subjectFilter is a Bloom filter of subjects, safe for concurrent use. A creating command
// asks the spill whether it holds the aggregate's state, nearly always of one it does not: a
// Pebble Get that found nothing (the memtable and every level-0 table of a spill written on
// every command) was 23 % of the bulk path's CPU in an import.
type subjectFilter struct {
	words []atomic.Uint64
	seed  maphash.Seed
}

// spillFilterHashes is the number of bits set per subject.
const spillFilterHashes = 7

func newSubjectFilter(bits int) subjectFilter {
	return subjectFilter{words: make([]atomic.Uint64, bits/64), seed: maphash.MakeSeed()}
}

// bits calls fn with each of the subject's bit positions (double hashing of one 64-bit hash).
func (f *subjectFilter) bits(subject []byte, fn func(word int, mask uint64) bool) bool {
	h := maphash.Bytes(f.seed, subject)
	a, b := uint32(h), uint32(h>>32)|1
	n := uint32(len(f.words) * 64)
	for i := range uint32(spillFilterHashes) {
		bit := (a + i*b) % n
		if !fn(int(bit/64), 1<<(bit%64)) {
			return false
		}
	}
	return true
}

func (f *subjectFilter) add(subject []byte) {
	f.bits(subject, func(w int, m uint64) bool { f.words[w].Or(m); return true })
}

// mayHave is false only for a subject never added.
func (f *subjectFilter) mayHave(subject []byte) bool {
	return f.bits(subject, func(w int, m uint64) bool { return f.words[w].Load()&m != 0 })
}
