package projections

import (
	"bytes"
	"slices"
	"sync"

	"github.com/acl-es/acl/aggregates"
)

// visibleChange compares the records of typ that pb may view on side b with those pa may view
// on side a (nil: a principal that does not exist there views nothing), walking both lists in
// step, ascending, as replay's diff walks two moments. An effect keeps at most
// aggregates.MaxEffectIDs ids of each list and counts the rest, so the walk holds one chunk of
// each index range and allocates for the ids it keeps: a grant at scope all walks every record
// of the type but no longer lists them (22 % of the bytes acld allocated in aclbench's commands
// workload went to the two lists and their difference). ok is false when nothing differs.
func visibleChange(b, a *side, pb, pa *aggregates.Principal, typ string, redo map[string]bool) (c aggregates.VisibleChange, ok bool, err error) {
	var before, after visibleIDs
	defer before.close()
	defer after.close()
	if pb != nil {
		if err := before.open(b, pb, typ, redo); err != nil {
			return c, false, err
		}
	}
	if pa != nil {
		if err := after.open(a, pa, typ, redo); err != nil {
			return c, false, err
		}
	}
	note := func(ids *[]string, n *int, id []byte) {
		if *n < aggregates.MaxEffectIDs {
			*ids = append(*ids, string(id))
		} else {
			c.Truncated = true
		}
		*n++
	}
	x, okB, err := before.next()
	if err != nil {
		return c, false, err
	}
	y, okA, err := after.next()
	if err != nil {
		return c, false, err
	}
	for okB || okA {
		switch cmp := bytes.Compare(x, y); {
		case okB && (!okA || cmp < 0):
			note(&c.Lost, &c.LostCount, x)
			x, okB, err = before.next()
		case okA && (!okB || cmp > 0):
			note(&c.Gained, &c.GainedCount, y)
			y, okA, err = after.next()
		default:
			if x, okB, err = before.next(); err == nil {
				y, okA, err = after.next()
			}
		}
		if err != nil {
			return c, false, err
		}
	}
	if b.v.err != nil {
		return c, false, b.v.err
	}
	if a.v.err != nil {
		return c, false, a.v.err
	}
	if c.GainedCount == 0 && c.LostCount == 0 {
		return c, false, nil
	}
	c.Gained, c.Lost = nonNil(c.Gained), nonNil(c.Lost)
	return c, true, nil
}

// visibleIDs walks, ascending and once each, every record of a type that a principal (its
// state on one side) may view: the ranges the visible query reads (plan.go, implied.go), then,
// for the ids in redo (records whose state the snapshot's indexes do not hold for this side,
// and those that depend on them), Check on this side instead of the ranges.
type visibleIDs struct {
	r      *ranges
	direct []*rangeIDs // one chunk of each range at a time
	lists  [][]string  // the implied pages (clients: whole lists)
	redo   map[string]bool
	// allowed lists, ascending, the ids of redo that Check allows on this side.
	allowed []string
	last    []byte // the id next returned last (a copy: the chunks move on)
}

func (w *visibleIDs) open(s *side, p *aggregates.Principal, typ string, redo map[string]bool) error {
	w.redo = redo
	perm := typ + ".view"
	if viewsAny(s.v.t, p, perm) {
		r, err := s.v.newRanges()
		if err != nil {
			return err
		}
		w.r = r
		srcs, err := r.plan(p, typ, aggregates.NarrowedGrants(s.v.t, p, perm))
		if err != nil {
			return err
		}
		for _, src := range srcs {
			w.direct = append(w.direct, newRangeIDs(r, src))
		}
		if w.lists, err = r.implied(p, typ, perm, "", allIDs); err != nil {
			return err
		}
	}
	for id := range redo {
		if s.allowed(p.ID, typ, id) {
			w.allowed = append(w.allowed, id)
		}
	}
	slices.Sort(w.allowed)
	return s.v.err
}

// viewsAny reports whether p may view any record through perm, as Check decides: a removed
// or disabled principal, or a denied or unknown permission, views nothing.
func viewsAny(t *aggregates.Tenant, p *aggregates.Principal, perm string) bool {
	return t.KnowsPermission(perm) && p.Active() && aggregates.LevelRank(p.Level) > 0 && !slices.Contains(p.Denied, perm)
}

func (w *visibleIDs) close() {
	for _, d := range w.direct {
		d.release()
	}
	if w.r != nil {
		w.r.close()
	}
}

// next returns the next id (valid until the following call), false at the end.
func (w *visibleIDs) next() ([]byte, bool, error) {
	for {
		var h least
		for _, d := range w.direct {
			id, ok, err := d.peek()
			if err != nil {
				return nil, false, err
			}
			if ok {
				h.bytes(id)
			}
		}
		for _, l := range w.lists {
			if len(l) > 0 {
				h.string(l[0])
			}
		}
		if len(w.allowed) > 0 {
			h.string(w.allowed[0])
		}
		switch h.kind {
		case 0:
			return nil, false, nil
		case 1:
			w.last = append(w.last[:0], h.b...)
		default:
			w.last = append(w.last[:0], h.s...)
		}
		// Drop it from every list that has it.
		keep := !w.redo[string(w.last)]
		for _, d := range w.direct {
			if id, ok, _ := d.peek(); ok && bytes.Equal(id, w.last) {
				d.pop()
			}
		}
		for i, l := range w.lists {
			if len(l) > 0 && l[0] == string(w.last) {
				w.lists[i] = l[1:]
			}
		}
		if len(w.allowed) > 0 && w.allowed[0] == string(w.last) {
			w.allowed, keep = w.allowed[1:], true
		}
		if keep {
			return w.last, true, nil
		}
	}
}

// least finds the least of the lists' heads (each list ascending, without repeats): a chunk's
// bytes or a list's string, compared without copying either.
type least struct {
	b    []byte
	s    string
	kind int8 // 0: none yet, 1: b, 2: s
}

func (h *least) bytes(id []byte) {
	if h.kind == 0 || (h.kind == 1 && bytes.Compare(id, h.b) < 0) || (h.kind == 2 && string(id) < h.s) {
		h.b, h.kind = id, 1
	}
}

func (h *least) string(id string) {
	if h.kind == 0 || (h.kind == 1 && id < string(h.b)) || (h.kind == 2 && id < h.s) {
		h.s, h.kind = id, 2
	}
}

// rangeIDs reads the distinct ids of one index range (ranges.page's) a chunk at a time into
// buffers it reuses, seeking the ranges' shared iterator again for each chunk.
type rangeIDs struct {
	r    *ranges
	s    source
	buf  []byte // the chunk's ids, one after the other
	ends []int  // where each ends in buf
	i    int    // the next one
	seek []byte // where the next chunk starts
	done bool   // the range has no more chunks
}

// rangeChunk is how many ids a chunk holds.
const rangeChunk = 256

var rangeIDsPool = sync.Pool{New: func() any { return new(rangeIDs) }}

func newRangeIDs(r *ranges, s source) *rangeIDs {
	d := rangeIDsPool.Get().(*rangeIDs)
	*d = rangeIDs{r: r, s: s, buf: d.buf[:0], ends: d.ends[:0], seek: append(d.seek[:0], s.prefix...)}
	return d
}

func (d *rangeIDs) release() {
	d.r, d.s = nil, source{}
	rangeIDsPool.Put(d)
}

// peek returns the next id, reading the next chunk when this one is done; false at the end.
func (d *rangeIDs) peek() ([]byte, bool, error) {
	if d.i == len(d.ends) {
		if d.done {
			return nil, false, nil
		}
		if err := d.fill(); err != nil {
			return nil, false, err
		}
		if len(d.ends) == 0 {
			return nil, false, nil
		}
	}
	start := 0
	if d.i > 0 {
		start = d.ends[d.i-1]
	}
	return d.buf[start:d.ends[d.i]], true, nil
}

func (d *rangeIDs) pop() { d.i++ }

// fill reads the next chunk, from d.seek on.
func (d *rangeIDs) fill() error {
	d.buf, d.ends, d.i = d.buf[:0], d.ends[:0], 0
	stopped, err := d.r.eachID(d.s, d.seek, func(id []byte) bool {
		d.buf = append(d.buf, id...)
		d.ends = append(d.ends, len(d.buf))
		return len(d.ends) < rangeChunk
	})
	if err != nil {
		return err
	}
	d.done = !stopped
	if n := len(d.ends); n > 0 {
		// Every key of an id greater than the last one sorts at or after prefix+id+"\x01".
		d.seek = append(append(append(d.seek[:0], d.s.prefix...), d.buf[d.lastStart():]...), sep+1)
	}
	return nil
}

// lastStart is where the chunk's last id starts in buf.
func (d *rangeIDs) lastStart() int {
	if n := len(d.ends); n > 1 {
		return d.ends[n-2]
	}
	return 0
}
