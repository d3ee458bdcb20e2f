package replay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The budget's coarsening of the grid outlives a restart. It used to be restored at each start:
// the filler then back-filled every checkpoint the fine grid wanted and the coarse one had
// dropped, each from a replay of the stream, and the budget dropped them again. On the 10^6
// data set that was 13 stretches, 90 checkpoints and ~14 s of CPU at every start, with RSS at
// ~590 MB meanwhile against ~250 idle. So coarsen writes the grid it reached (gridFile) and
// the next start takes it up again, as long as the grid and budget it was reached from are the
// ones configured now: a changed --checkpoint-every, --checkpoints-dense or
// --checkpoint-budget-mb starts from the configured grid again.

// gridFile is the file, in the checkpoints' directory, of the grid the budget coarsened to.
const gridFile = "GRID"

// gridState is gridFile's content: the coarsened grid and what it was reached from.
type gridState struct {
	every, dense uint64 // the coarsened grid
	fromEvery    uint64 // the configured grid and budget it was coarsened from
	fromDense    uint64
	budget       int64
}

// gridFormat is gridFile's one line: the gridState's fields in order.
const gridFormat = "%d %d %d %d %d\n"

func (s gridState) encode() []byte {
	return fmt.Appendf(nil, gridFormat, s.every, s.dense, s.fromEvery, s.fromDense, s.budget)
}

// loadGrid reads the grid dir's checkpoints were coarsened to, if it was coarsened from g
// under budget, and one on g's lattice (a multiple of g's spacing, no more dense ones): what
// the next thinning may keep; g otherwise, or when there is no such file.
func loadGrid(dir string, g grid, budget int64) (grid, error) {
	b, err := os.ReadFile(filepath.Join(dir, gridFile))
	if errors.Is(err, os.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return g, fmt.Errorf("replay: read the checkpoints' grid: %w", err)
	}
	var s gridState
	if _, err := fmt.Sscanf(string(b), gridFormat, &s.every, &s.dense, &s.fromEvery, &s.fromDense, &s.budget); err != nil {
		return g, nil // unreadable: start from the configured grid, as before this file
	}
	if s.fromEvery != g.every || s.fromDense != g.dense || s.budget != budget ||
		g.every == 0 || s.every < g.every || s.every%g.every != 0 || s.dense == 0 || s.dense > g.dense {
		return g, nil
	}
	return grid{every: s.every, dense: s.dense}, nil
}

// saveGrid records the grid coarsened from the configured one (atomically: a crash leaves the
// old file or the new one).
func saveGrid(dir string, s gridState) error {
	tmp := filepath.Join(dir, gridFile+".tmp")
	if err := os.WriteFile(tmp, s.encode(), 0o644); err != nil {
		return fmt.Errorf("replay: save the checkpoints' grid: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, gridFile)); err != nil {
		return fmt.Errorf("replay: save the checkpoints' grid: %w", err)
	}
	return nil
}
