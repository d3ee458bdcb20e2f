package commands

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/acl-es/acl/aggregates"
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
// It is the cache continued on disk, with the same trust: a state in the spill is the one the
// cache would have kept. What would have made a cached entry stale deletes its spilled state
// too (the invalidation of another instance's write, a lost invalidation, a write through an
// entry already dropped), under the cache's lock, so that a state is written to the spill only
// by the entry currently in the cache and only while it is fresh (cache.spillLocked). Appends
// still state their expected sequence, so a stale state could cost a conflict and a reload,
// never a wrong write.
//
// The spill does not outlive the process: writes of other instances while this one was down
// are unknown to it, so it is emptied on open, and it has no WAL. Tenants are not spilled:
// they are never dropped from the cache.

// spill is the on-disk tier of the cache.
type spill struct {
	db   *pebble.DB
	dir  string
	wo   *pebble.WriteOptions
	hits atomic.Int64 // states read back (tests)
}

// spillCacheBytes is the spill's Pebble block cache: the states it serves are read once and
// then cached in memory again, so a larger cache mostly holds copies.
const spillCacheBytes = 8 << 20

// openSpill empties dir and opens a spill in it.
func openSpill(dir string) (*spill, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("commands: empty the state spill %s: %w", dir, err)
	}
	cache := pebble.NewCache(spillCacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
		MemTableSize:       4 << 20,
		DisableWAL:         true, // emptied on every open: nothing in it needs to survive a crash
		Logger:             quietLogger{},
	}
	for i := range opts.Levels {
		// A state never spilled (the first command on an aggregate since the start) must not
		// read a block of every level to find out.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("commands: open the state spill %s: %w", dir, err)
	}
	return &spill{db: db, dir: dir, wo: pebble.NoSync}, nil
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
	_, closer, err := sp.db.Get([]byte(subject))
	if err != nil {
		return false
	}
	_ = closer.Close()
	return true
}

func (sp *spill) set(subject string, st any) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	return sp.db.Set([]byte(subject), b, sp.wo)
}

func (sp *spill) delete(subject string) error {
	return sp.db.Delete([]byte(subject), sp.wo)
}

// clear deletes every spilled state.
func (sp *spill) clear() error {
	return sp.db.DeleteRange([]byte{}, []byte{0xff}, sp.wo)
}

func (sp *spill) close() error {
	if err := sp.db.Close(); err != nil {
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

// A spilled state, version 1:
//
//	"ACLS" 1 kind
//	str JSON of the state (Commands is never in its JSON)
//	commands (see appendCommands)
//
// where kind is 'p' (principal) or 'r' (record) and str is a uvarint length and the bytes.
const (
	spillMagic   = "ACLS"
	spillVersion = 1
)

func encodeState(st any) ([]byte, error) {
	var kind byte
	var cmds map[string]aggregates.CommandResult
	switch s := st.(type) {
	case *aggregates.Principal:
		kind, cmds = 'p', s.Commands
	case *aggregates.Record:
		kind, cmds = 'r', s.Commands
	default:
		return nil, fmt.Errorf("commands: spill a %T", st)
	}
	js, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("commands: spill a %T: %w", st, err)
	}
	b := make([]byte, 0, len(spillMagic)+2+len(js)+commandsSize(cmds)+10)
	b = append(b, spillMagic...)
	b = append(b, spillVersion, kind)
	b = appendStr(b, string(js))
	return appendCommands(b, cmds), nil
}

// decodeState reads a spilled state. It takes data over: the commands' strings point into it.
func decodeState(data []byte) (any, error) {
	if len(data) < len(spillMagic)+2 || string(data[:len(spillMagic)]) != spillMagic {
		return nil, errors.New("not a spilled state")
	}
	if v := data[len(spillMagic)]; v != spillVersion {
		return nil, fmt.Errorf("version %d, want %d", v, spillVersion)
	}
	kind := data[len(spillMagic)+1]
	rest := data[len(spillMagic)+2:]
	r := &snapReader{s: unsafe.String(unsafe.SliceData(rest), len(rest))}
	js := r.str()
	if r.err != nil {
		return nil, r.err
	}
	var st any
	switch kind {
	case 'p':
		p := &aggregates.Principal{}
		if err := json.Unmarshal([]byte(js), p); err != nil {
			return nil, err
		}
		if p.Prov == nil {
			p.Prov = map[string]string{}
		}
		p.Commands = r.commands()
		st = p
	case 'r':
		rec := &aggregates.Record{}
		if err := json.Unmarshal([]byte(js), rec); err != nil {
			return nil, err
		}
		if rec.Prov == nil {
			rec.Prov = map[string]string{}
		}
		rec.Commands = r.commands()
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
	return st, nil
}

// appendCommands appends the command ids a state remembers:
//
//	uvarint n, n times: str command id, uvarint seq, str hash, uvarint k, k times str event id
func appendCommands(b []byte, cmds map[string]aggregates.CommandResult) []byte {
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for id, r := range cmds {
		b = appendStr(b, id)
		b = binary.AppendUvarint(b, r.Seq)
		b = appendStr(b, r.Hash)
		b = binary.AppendUvarint(b, uint64(len(r.Events)))
		for _, ev := range r.Events {
			b = appendStr(b, ev)
		}
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
		cid := r.str()
		res := aggregates.CommandResult{Seq: r.uvarint(), Hash: r.str()}
		k := r.count(1)
		if len(evs)+k > cap(evs) {
			evs = make([]string, 0, max(k, min(4096, 2*n)))
		}
		for range k {
			evs = append(evs, r.str())
		}
		if k > 0 {
			res.Events = evs[len(evs)-k : len(evs) : len(evs)]
		}
		cmds[cid] = res
	}
	return cmds
}
