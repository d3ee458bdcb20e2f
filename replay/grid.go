package replay

import "math/bits"

// grid decides which checkpoints are kept, so that disk stays bounded as the stream grows while
// recent moments stay cheap: every checkpoint among the newest dense*every sequences (at least
// one at each multiple of every), then, as checkpoints age, only those at multiples of a spacing
// that doubles each time their age doubles. The filler's checkpoints share their tables (each
// links the tables of the one before plus its own), so thinning them frees little; the default
// dense keeps them all, and the budget (checkpoints.coarsen) thins the grid when it must.
type grid struct {
	every, dense uint64
}

// maxLevel caps the doublings so that shifts never overflow.
const maxLevel = 40

// spacing is the distance kept between checkpoints of a given age.
func (g grid) spacing(age uint64) uint64 {
	span := g.every * g.dense
	if age < span {
		return g.every
	}
	return g.every << min(bits.Len64(age/span), maxLevel)
}

// keeps reports whether the checkpoint at seq stays while the newest is at newest: all of the
// dense ones (exact multiples of every or not), then those on their age's spacing. Once a
// checkpoint is not kept it never is again: the spacing only grows with age, each a multiple of
// the one before.
func (g grid) keeps(seq, newest uint64) bool {
	if seq >= newest {
		return true
	}
	age := newest - seq
	return age < g.every*g.dense || seq%g.spacing(age) == 0
}

// wants reports whether a checkpoint belongs at seq while the newest is at newest: the filler
// makes those that are missing.
func (g grid) wants(seq, newest uint64) bool {
	return seq > 0 && seq%g.every == 0 && (seq >= newest || seq%g.spacing(newest-seq) == 0)
}

// missing lists the sequences strictly between prev and next that the grid wants.
func (g grid) missing(prev, next, newest uint64) []uint64 {
	var out []uint64
	for s := (prev/g.every + 1) * g.every; s < next; s += g.every {
		if g.wants(s, newest) {
			out = append(out, s)
		}
	}
	return out
}
