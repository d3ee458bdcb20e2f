package replay

import (
	"fmt"
	"slices"
	"testing"
)

func TestGridSpacing(t *testing.T) {
	g := grid{every: 100, dense: 4} // dense span 400
	for _, tc := range []struct{ age, want uint64 }{
		{0, 100}, {399, 100}, {400, 200}, {799, 200}, {800, 400}, {1599, 400}, {1600, 800}, {1 << 62, 100 << maxLevel},
	} {
		if got := g.spacing(tc.age); got != tc.want {
			t.Errorf("spacing(%d) = %d, want %d", tc.age, got, tc.want)
		}
	}
}

// TestGridKeepsFew: checkpoints taken at every multiple of every along a long stream, thinned as
// the grid says, stay about dense + dense/2 per doubling of the stream; no gap is wider than the
// spacing at the age of its older end; and a checkpoint dropped once is never wanted again.
func TestGridKeepsFew(t *testing.T) {
	for _, dense := range []uint64{4, 16, 64} {
		t.Run(fmt.Sprint(dense), func(t *testing.T) {
			g := grid{every: 10, dense: dense}
			var kept []uint64
			dropped := map[uint64]bool{}
			for newest := uint64(10); newest <= 200_000; newest += 10 {
				kept = append(kept, newest)
				kept = slices.DeleteFunc(kept, func(s uint64) bool {
					if !g.keeps(s, newest) {
						dropped[s] = true
						return true
					}
					return false
				})
				for _, s := range g.missing(0, newest, newest) {
					if dropped[s] {
						t.Fatalf("newest %d: %d wanted again after being dropped", newest, s)
					}
				}
			}
			newest := kept[len(kept)-1]
			prev := uint64(0)
			for _, s := range kept {
				if s-prev > g.spacing(newest-prev) {
					t.Errorf("gap %d..%d wider than the spacing %d at age %d", prev, s, g.spacing(newest-prev), newest-prev)
				}
				prev = s
			}
			doublings := 0
			for span := g.every * g.dense; span < newest; span *= 2 {
				doublings++
			}
			if max := dense + dense/2*uint64(doublings) + 2; uint64(len(kept)) > max {
				t.Errorf("%d checkpoints kept of %d, want at most %d", len(kept), newest/10, max)
			}
		})
	}
}
