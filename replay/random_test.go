package replay

import (
	"github.com/acl-es/acl/aggregates/aggregatestest"
)

// randomHistory drives n random commands (aggregatestest.Random) into tenant acme (preset
// trackops) as its administrator. Commands that Decide rejects are skipped: what is stored is a
// history the product could have.
type randomHistory struct {
	d   *driver
	gen *aggregatestest.Random
}

var (
	rhPrincipals = aggregatestest.Principals
	rhTypes      = aggregatestest.Types
	rhIDs        = aggregatestest.IDs
)

func newRandomHistory(d *driver, seed uint64) *randomHistory {
	h := &randomHistory{d: d, gen: aggregatestest.NewRandom(seed)}
	d.tenant("acme", "trackops")
	for _, cmd := range aggregatestest.Setup() {
		d.must("acme", aggregatestest.Admin, cmd)
	}
	return h
}

// run issues n commands; it returns how many were accepted.
func (h *randomHistory) run(n int) int {
	ok := 0
	for range n {
		actor, cmd := h.gen.Command(h.d.world["acme"].T)
		if _, err := h.d.try("acme", actor, cmd); err == nil {
			ok++
		}
	}
	return ok
}
