package aggregates

import (
	"iter"
	"maps"
	"slices"
	"unsafe"

	"github.com/acl-es/acl/events"
)

// Commands is what a principal or a record remembers of the commands it applied: for each
// command id, the result a retry is answered with (CommandResult). It is kept in a compact form
// without pointers: a command id and an event id are UUIDs (16 bytes, not a 36-byte string),
// a hash is 64 hex digits (32 bytes). As a map of strings each command was four objects
// (its id, hash, event id and event list) besides its slot, about 250 bytes; the command
// service holds 20,000 such states (more in the query engine and the projector) and every
// collection marked each string. Here a command is 64 bytes of a slice the collector does not
// scan, plus 16 per event. An id, hash or event id of another form (older releases, tests) is
// kept as before, in a map of strings: any id still answers the same.
//
// The zero value remembers nothing. A Commands shared by several states must not be changed:
// Clone gives a copy to change.
type Commands struct {
	recs []commandRec             // one per command id, in the order first applied
	evs  [][16]byte               // each command's events, a run of evs
	more map[string]CommandResult // commands not in compact form; an id is here or in recs
	// idx maps each compact command's id to its place in recs once there are indexFrom of them.
	// Without it, loading a busy aggregate from the stream (one add per event, each looking for
	// its id) was quadratic: 100,000 commands 7.5 s against the map's 0.11. Only the methods that
	// change c build or keep it (indexed), so a shared Commands is only ever read; Clone leaves
	// it out, and a change of the clone builds its own.
	idx map[[16]byte]int32
	// moved counts the commands Forget moved out: the command service keeps them on disk (its
	// spill), so a command id not here may still be one of them when moved is not 0.
	moved uint64
}

// indexFrom is how many compact commands a Commands holds before it keeps an index of their
// ids: below it a scan costs about what a map lookup does, and most states remember fewer.
const indexFrom = 64

// commandRec is one command in compact form; its events are evs[ev : ev+nev].
type commandRec struct {
	id     [16]byte
	hash   [32]byte
	seq    uint64
	ev     uint32
	nev    uint16
	noHash bool // the command had no hash (not "")
}

// Len is the number of commands remembered here (not counting those moved out).
func (c *Commands) Len() int { return len(c.recs) + len(c.more) }

// Moved is the number of commands Forget moved out of c (and of the states it was cloned from):
// when it is not 0, an id c does not remember may be one of them.
func (c *Commands) Moved() uint64 { return c.moved }

// SetMoved sets Moved, as a decoder of a state that had moved commands out reads it.
func (c *Commands) SetMoved(n uint64) { c.moved = n }

// Forget moves out the oldest commands (by sequence) beyond the newest keep, returning them,
// and counts them in Moved. The caller stores what it returns before anyone reads c without
// them (see Moved).
func (c *Commands) Forget(keep int) Commands {
	n := c.Len() - keep
	if n <= 0 {
		return Commands{}
	}
	cut := c.cutoff(n)
	var old Commands
	kept := c.recs[:0] // in place: a kept rec never overtakes the one it is read from
	for _, r := range c.recs {
		run := c.evs[r.ev : r.ev+uint32(r.nev)]
		if r.seq > cut {
			kept = append(kept, r)
			continue
		}
		r.ev = uint32(len(old.evs))
		old.evs = append(old.evs, run...)
		old.recs = append(old.recs, r)
	}
	// The kept ones' events into a new array (runs may be out of order, see add).
	m := 0
	for _, r := range kept {
		m += int(r.nev)
	}
	evs := make([][16]byte, 0, m+1)
	for i := range kept {
		r := &kept[i]
		run := c.evs[r.ev : r.ev+uint32(r.nev)]
		r.ev = uint32(len(evs))
		evs = append(evs, run...)
	}
	for id, r := range c.more { // ids of another form age as the others do
		if r.Seq <= cut {
			if old.more == nil {
				old.more = map[string]CommandResult{}
			}
			old.more[id] = r
			delete(c.more, id)
		}
	}
	c.recs, c.evs, c.idx = kept, evs, nil // the places moved: a change builds the index again
	c.moved += uint64(old.Len())
	return old
}

// cutoff is the sequence at or below which the n oldest commands are (n < Len). Commands are
// remembered in the order applied, so in compact form alone their sequences ascend; otherwise
// they are sorted.
func (c *Commands) cutoff(n int) uint64 {
	ascending := len(c.more) == 0
	for i := 1; ascending && i < len(c.recs); i++ {
		ascending = c.recs[i-1].seq < c.recs[i].seq
	}
	if ascending {
		return c.recs[n-1].seq
	}
	seqs := make([]uint64, 0, c.Len())
	for _, r := range c.recs {
		seqs = append(seqs, r.seq)
	}
	for _, r := range c.more {
		seqs = append(seqs, r.Seq)
	}
	slices.Sort(seqs)
	return seqs[n-1]
}

// Get returns what was remembered of command id.
func (c *Commands) Get(id string) (CommandResult, bool) {
	if r, ok := c.more[id]; ok {
		return r, true
	}
	u, ok := parseUUID(id)
	if !ok {
		return CommandResult{}, false
	}
	if i := c.find(u); i >= 0 {
		return c.result(&c.recs[i]), true
	}
	return CommandResult{}, false
}

func (c *Commands) find(u [16]byte) int {
	if c.idx != nil {
		if i, ok := c.idx[u]; ok {
			return int(i)
		}
		return -1
	}
	for i := len(c.recs) - 1; i >= 0; i-- { // a retry is most often of a recent command
		if c.recs[i].id == u {
			return i
		}
	}
	return -1
}

// indexed builds the index of ids once c holds indexFrom compact commands; every method that
// changes recs calls it first, and keeps the index up to date (push) or drops it (a deletion).
func (c *Commands) indexed() {
	if c.idx != nil || len(c.recs) < indexFrom {
		return
	}
	c.idx = make(map[[16]byte]int32, 2*len(c.recs))
	for i := range c.recs {
		c.idx[c.recs[i].id] = int32(i)
	}
}

// push appends rec to recs, in the index too.
func (c *Commands) push(rec commandRec) {
	c.recs = append(c.recs, rec)
	if c.idx != nil {
		c.idx[rec.id] = int32(len(c.recs) - 1)
	}
}

// result formats a compact command's strings (one allocation for all of them).
func (c *Commands) result(r *commandRec) CommandResult {
	n := 36 * int(r.nev)
	if !r.noHash {
		n += 64
	}
	res := CommandResult{Seq: r.seq}
	if n == 0 {
		return res
	}
	buf := make([]byte, 0, n) // never grown: each string points into it
	at := func(start int) string { return unsafe.String(&buf[start], len(buf)-start) }
	if !r.noHash {
		buf = appendHex(buf, r.hash[:])
		res.Hash = at(0)
	}
	if r.nev > 0 {
		res.Events = make([]string, r.nev)
		for k, ev := range c.evs[r.ev : r.ev+uint32(r.nev)] {
			start := len(buf)
			buf = appendUUID(buf, ev)
			res.Events[k] = at(start)
		}
	}
	return res
}

// All yields every command remembered with its result; the order is not defined.
func (c *Commands) All() iter.Seq2[string, CommandResult] {
	return func(yield func(string, CommandResult) bool) {
		for i := range c.recs {
			r := &c.recs[i]
			res := c.result(r)
			var id [36]byte
			if !yield(string(appendUUID(id[:0], r.id)), res) {
				return
			}
		}
		for id, r := range c.more {
			if !yield(id, r) {
				return
			}
		}
	}
}

// Visit calls fn with every command remembered and its result, in no defined order, as All
// does but without an allocation per command: the strings of all of them are formatted into
// one buffer and stay valid after Visit; r.Events is valid only during its call.
func (c *Commands) Visit(fn func(id string, r CommandResult)) {
	n, most := 0, 0
	for _, r := range c.recs {
		n += 36 + 36*int(r.nev)
		if !r.noHash {
			n += 64
		}
		most = max(most, int(r.nev))
	}
	buf := make([]byte, 0, n) // never grown: the strings point into it
	var first [4]string
	evs := first[:0]
	if most > len(first) {
		evs = make([]string, 0, most)
	}
	str := func(start int) string { return unsafe.String(&buf[start], len(buf)-start) }
	for i := range c.recs {
		r := &c.recs[i]
		start := len(buf)
		buf = appendUUID(buf, r.id)
		id := str(start)
		res := CommandResult{Seq: r.seq}
		if !r.noHash {
			start = len(buf)
			buf = appendHex(buf, r.hash[:])
			res.Hash = str(start)
		}
		evs = evs[:0]
		for _, ev := range c.evs[r.ev : r.ev+uint32(r.nev)] {
			start = len(buf)
			buf = appendUUID(buf, ev)
			evs = append(evs, str(start))
		}
		if len(evs) > 0 {
			res.Events = evs
		}
		fn(id, res)
	}
	for id, r := range c.more {
		fn(id, r)
	}
}

// Append remembers r for command id, which it must not remember yet: a decoder of what Visit
// or All gave (each id once) need not look for it, as Set does.
func (c *Commands) Append(id string, r CommandResult) {
	u, ok := parseUUID(id)
	if rec, compact := compactResult(u, r); ok && compact && len(c.evs)+len(r.Events) < 1<<32 {
		c.indexed()
		c.push(c.withEvents(rec, r.Events))
		return
	}
	if c.more == nil {
		c.more = map[string]CommandResult{}
	}
	r.Events = slices.Clone(r.Events) // the caller's list may be reused
	c.more[id] = r
}

// Set remembers r for command id, replacing what was remembered of it.
func (c *Commands) Set(id string, r CommandResult) {
	c.indexed()
	u, ok := parseUUID(id)
	i := -1
	if ok {
		i = c.find(u)
	}
	if rec, compact := compactResult(u, r); ok && compact && len(c.evs)+len(r.Events) < 1<<32 {
		delete(c.more, id)
		rec = c.withEvents(rec, r.Events)
		if i >= 0 {
			c.recs[i] = rec
		} else {
			c.push(rec)
		}
		return
	}
	if i >= 0 {
		c.recs = slices.Delete(c.recs, i, i+1)
		c.idx = nil // the places after i moved; the next change builds it again
	}
	if c.more == nil {
		c.more = map[string]CommandResult{}
	}
	c.more[id] = r
}

// withEvents appends the events of rec, UUIDs (compactResult checked), to c.evs as its run.
func (c *Commands) withEvents(rec commandRec, evs []string) commandRec {
	rec.ev = uint32(len(c.evs))
	for _, ev := range evs {
		e, _ := parseUUID(ev)
		c.evs = append(c.evs, e)
	}
	return rec
}

// Grow makes room for n more commands of one event each, as a decoder knows it will append.
func (c *Commands) Grow(n int) {
	c.recs, c.evs = slices.Grow(c.recs, n), slices.Grow(c.evs, n)
}

// Reset forgets every command, keeping the memory for the next ones.
func (c *Commands) Reset() {
	c.recs, c.evs = c.recs[:0], c.evs[:0]
	clear(c.more)
	c.idx = nil
	c.moved = 0
}

// compactResult is r in compact form, false when one of its strings has no such form.
func compactResult(id [16]byte, r CommandResult) (commandRec, bool) {
	rec := commandRec{id: id, seq: r.Seq, noHash: r.Hash == ""}
	if r.Hash != "" && !parseHex(rec.hash[:], r.Hash) || len(r.Events) > 1<<16-1 {
		return rec, false
	}
	rec.nev = uint16(len(r.Events))
	for _, ev := range r.Events {
		if _, ok := parseUUID(ev); !ok {
			return rec, false
		}
	}
	return rec, true
}

// add records e, an event of command e.CommandID, as remember did with a map: the command's
// sequence and hash become e's, and e joins its events.
func (c *Commands) add(e events.Envelope) {
	if e.CommandID == "" {
		return
	}
	u, ok := parseUUID(e.CommandID)
	ev, evOK := parseUUID(e.ID)
	var hash [32]byte
	hashOK := e.CommandHash == "" || parseHex(hash[:], e.CommandHash)
	c.indexed()
	i := -1
	if ok {
		i = c.find(u)
	}
	if _, inMore := c.more[e.CommandID]; !ok || !evOK || !hashOK || inMore ||
		i >= 0 && c.recs[i].nev == 1<<16-1 || len(c.evs) >= 1<<32-2 {
		r, _ := c.Get(e.CommandID)
		r.Seq = e.Seq
		r.Events = append(r.Events, e.ID)
		r.Hash = e.CommandHash
		c.Set(e.CommandID, r)
		return
	}
	if i < 0 {
		c.push(commandRec{id: u, ev: uint32(len(c.evs))})
		i = len(c.recs) - 1
	}
	r := &c.recs[i]
	if int(r.ev)+int(r.nev) != len(c.evs) { // its run is not the last one: move it to the end
		c.evs = append(c.evs, c.evs[r.ev:r.ev+uint32(r.nev)]...)
		r.ev = uint32(len(c.evs) - int(r.nev))
	}
	c.evs = append(c.evs, ev)
	r.nev++
	r.seq, r.hash, r.noHash = e.Seq, hash, e.CommandHash == ""
}

// Clone returns a copy that can be changed without changing c.
func (c *Commands) Clone() Commands {
	out := Commands{recs: slices.Clone(c.recs), more: maps.Clone(c.more), moved: c.moved}
	if len(c.recs) > 0 {
		// Only the runs of the commands: a run moved to the end left its old one unused.
		n := 0
		for _, r := range c.recs {
			n += int(r.nev)
		}
		out.evs = make([][16]byte, 0, n)
		for i := range out.recs {
			r := &out.recs[i]
			run := c.evs[r.ev : r.ev+uint32(r.nev)]
			r.ev = uint32(len(out.evs))
			out.evs = append(out.evs, run...)
		}
	}
	for id, r := range out.more {
		r.Events = slices.Clip(r.Events) // an append to the copy's list never writes into c's
		out.more[id] = r
	}
	return out
}

// parseUUID reads a UUID in its canonical form (lower-case hex, dashes after 8, 12, 16, 20
// digits): the only form kept compact, so that formatting it gives back the same string.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	ok := parseHex(u[0:4], s[0:8]) && parseHex(u[4:6], s[9:13]) && parseHex(u[6:8], s[14:18]) &&
		parseHex(u[8:10], s[19:23]) && parseHex(u[10:16], s[24:36])
	return u, ok
}

// parseHex reads len(dst)*2 lower-case hex digits s into dst.
func parseHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, src []byte) []byte {
	for _, x := range src {
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

func appendUUID(b []byte, u [16]byte) []byte {
	b = appendHex(b, u[0:4])
	b = append(b, '-')
	b = appendHex(b, u[4:6])
	b = append(b, '-')
	b = appendHex(b, u[6:8])
	b = append(b, '-')
	b = appendHex(b, u[8:10])
	b = append(b, '-')
	return appendHex(b, u[10:16])
}
