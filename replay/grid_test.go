package replay

import (
	"fmt"
	"os"
	"path/filepath"
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

// TestCoarsenedGridKeptAcrossRestart: the grid the budget coarsened to is taken up again when
// the checkpoints are opened with the same configuration, so the filler does not back-fill the
// checkpoints the budget dropped (it did at every start: ~14 s of replays at 10^6 records, which
// the budget then dropped again); a changed configuration starts from its own grid.
func TestCoarsenedGridKeptAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	configured := grid{every: 10, dense: allDense}
	const budget = 1000
	open := func(budget int64) *checkpoints {
		c, err := openCheckpoints(dir, configured, budget)
		if err != nil {
			t.Fatal(err)
		}
		c.budget = func() int64 { return budget }
		return c
	}
	c := open(budget)
	for seq := uint64(10); seq <= 300; seq += 10 {
		tmp, err := os.MkdirTemp(dir, "tmp-")
		if err != nil {
			t.Fatal(err)
		}
		// Each checkpoint pins 100 bytes of its own: 30 of them are three times the budget.
		if err := os.WriteFile(filepath.Join(tmp, "table"), make([]byte, 100), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.add(tmp, seq, false); err != nil {
			t.Fatal(err)
		}
	}
	coarse, kept := c.grid, c.list()
	if coarse == configured {
		t.Fatalf("the budget never coarsened the grid (%d checkpoints kept)", len(kept))
	}
	// What backfill would make: the checkpoints the grid wants between those kept.
	backfill := func(c *checkpoints) (want []uint64) {
		prev, seqs := uint64(0), c.list()
		for _, seq := range seqs {
			want = append(want, c.missing(prev, seq, seqs[len(seqs)-1])...)
			prev = seq
		}
		return want
	}
	if want := backfill(c); len(want) > 0 {
		t.Fatalf("the coarse grid %+v wants %v, which it dropped (kept %v)", c.grid, want, kept)
	}

	again := open(budget)
	if again.grid != coarse {
		t.Errorf("after a restart the grid is %+v, want the coarsened %+v", again.grid, coarse)
	}
	if got := again.list(); !slices.Equal(got, kept) {
		t.Errorf("after a restart the checkpoints are %v, want %v", got, kept)
	}
	if want := backfill(again); len(want) > 0 {
		t.Errorf("after a restart the filler would back-fill %v", want)
	}

	other := open(2 * budget)
	if other.grid != configured || len(backfill(other)) == 0 {
		t.Errorf("with another budget the grid is %+v, want the configured %+v (and its checkpoints back-filled)", other.grid, configured)
	}
}
