package replay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/acl-es/acl/projections"
)

// checkpoints is the set of read-model checkpoints kept in one directory, each named by the
// sequence it has applied (ckpt-<20 digits>). A checkpoint is immutable once renamed into place;
// as_of copies it (hard links) and replays the events after it. The filler makes them, each
// from a copy of the one before, so they share most of their tables.
type checkpoints struct {
	dir string
	// budget bounds the bytes the checkpoints pin beyond the live model's files (see
	// coarsen); nil: no bound.
	budget func() int64
	live   string // the live model's directory, whose files cost the checkpoints nothing

	mu   sync.RWMutex // held for reading while a checkpoint is copied, for writing to drop one
	grid grid         // coarsened (every doubled) while the checkpoints exceed the budget
	// configured is the grid of the options and budgetSetting their budget (Options.
	// CheckpointBudget): a coarsened grid is saved with them (grid_state.go).
	configured    grid
	budgetSetting int64
	seqs          []uint64 // ascending
	// rebases are the checkpoints at which the chain was rebased (rebasedMark), ascending:
	// thinning keeps them and the newest checkpoint before each (segmentEnds)
	rebases []uint64
	// firstTagged: the chain's first segment (before its first rebase, or all of it) is known
	// to be read as of its flushes (its last checkpoint's tables are all tagged: checked once
	// at start, firstSegmentTagged). The segments after a rebase always are (a rebase and the
	// flushes after it are written by a release that tags). Past the newest flushTail, the
	// checkpoints of such a segment are dropped (servedByFlushes).
	firstTagged bool
	tail        uint64 // flushTail (tests shorten it)
	// sharedSeq is the checkpoint of the shared as_of base (0: none opened yet). Checkpoints
	// after it stay: the shared base is opened again only when an answer comes, so after an
	// idle spell it can be far behind the newest, and a moment between the two starts from its
	// own checkpoint, not from the shared base with every event since replayed.
	sharedSeq uint64
	added     int        // checkpoints added since opened (tests)
	disk      *diskShare // the files of the checkpoints, each counted once; nil until needed

	// pins counts the open as_of bases reading each checkpoint (bases.go): thinning removes a
	// pinned checkpoint from seqs at once and from disk when its last reader unpins it (Pebble
	// opens a table on its first read).
	pmu    sync.Mutex
	pins   map[uint64]int
	doomed map[uint64]bool
}

// pinNearest is nearest, with the checkpoint found pinned until unpin is called.
func (c *checkpoints) pinNearest(seq uint64) (found uint64, unpin func()) {
	found, done := c.nearest(seq)
	defer done()
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.pins == nil {
		c.pins, c.doomed = map[uint64]int{}, map[uint64]bool{}
	}
	c.pins[found]++
	return found, func() {
		c.pmu.Lock()
		c.pins[found]--
		drop := c.pins[found] == 0 && c.doomed[found]
		if c.pins[found] == 0 {
			delete(c.pins, found)
			delete(c.doomed, found)
		}
		c.pmu.Unlock()
		if drop {
			c.removeDir(found)
		}
	}
}

// remove deletes the directory of a checkpoint no longer kept, or dooms it while pinned.
// Called with mu held.
func (c *checkpoints) remove(seq uint64) error {
	c.pmu.Lock()
	pinned := c.pins[seq] > 0
	if pinned {
		c.doomed[seq] = true
	}
	c.pmu.Unlock()
	if pinned {
		return nil
	}
	return c.removeDir(seq)
}

// droppedPrefix names a checkpoint directory being removed. The directory is renamed first, so
// that a crash during its removal (thousands of files at 10^6 records) leaves no half-removed
// checkpoint under a checkpoint's name, which the next start would list and as_of would open
// (its manifest gone, or tables it names); the next start removes what was renamed
// (listCheckpoints: any other name is an interrupted checkpoint's).
const droppedPrefix = "dropped-"

// removeDir removes the directory of the checkpoint at seq, renamed out of the listing first.
func (c *checkpoints) removeDir(seq uint64) error {
	dropped := filepath.Join(c.dir, droppedPrefix+ckptName(seq))
	if err := os.Rename(c.path(seq), dropped); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("replay: drop checkpoint %d: %w", seq, err)
	}
	if err := os.RemoveAll(dropped); err != nil {
		return fmt.Errorf("replay: drop checkpoint %d: %w", seq, err)
	}
	return nil
}

// fileID names a file whatever the links to it: checkpoints share their tables as hard links.
type fileID struct{ dev, ino uint64 }

// diskShare counts the bytes of the checkpoints' files, each file once however many
// checkpoints link it, as checkpoints come and go: the filler's consecutive checkpoints share
// all but their newest tables, and hundreds of them link hundreds of tables each, too many to
// stat for every checkpoint added.
type diskShare struct {
	files map[uint64][]fileID // each checkpoint's files
	refs  map[fileID]int      // how many checkpoints link each file
	size  map[fileID]int64
	total int64 // bytes of the distinct files
}

func newDiskShare() *diskShare {
	return &diskShare{files: map[uint64][]fileID{}, refs: map[fileID]int{}, size: map[fileID]int64{}}
}

// add counts the files of the checkpoint at seq, in dir.
func (d *diskShare) add(seq uint64, dir string) error {
	var ids []fileID
	err := dirFiles(dir, d.known, func(_ string, id fileID, size int64) {
		ids = append(ids, id)
		if d.refs[id]++; d.refs[id] == 1 {
			d.size[id] = size
			d.total += size
		}
	})
	if err != nil {
		return fmt.Errorf("replay: checkpoint budget: %w", err)
	}
	d.files[seq] = ids
	return nil
}

// known reports whether the size of a file is known: another checkpoint links it.
func (d *diskShare) known(id fileID) bool { return d.refs[id] > 0 }

// drop forgets the checkpoint at seq: files no other checkpoint links no longer count.
func (d *diskShare) drop(seq uint64) {
	for _, id := range d.files[seq] {
		if d.refs[id]--; d.refs[id] == 0 {
			d.total -= d.size[id]
			delete(d.refs, id)
			delete(d.size, id)
		}
	}
	delete(d.files, seq)
}

// freedBy is how many bytes dropping the checkpoints seqs would free: the files no other
// checkpoint links.
func (d *diskShare) freedBy(seqs []uint64) int64 {
	drops := map[fileID]int{}
	var freed int64
	for _, seq := range seqs {
		for _, id := range d.files[seq] {
			if drops[id]++; drops[id] == d.refs[id] {
				freed += d.size[id]
			}
		}
	}
	return freed
}

// statID identifies a directory entry's file and its size; false when it is gone or not a
// regular file.
func statID(e os.DirEntry) (fileID, int64, bool) {
	fi, err := e.Info()
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{uint64(st.Dev), st.Ino}, fi.Size(), true
}

const ckptPrefix = "ckpt-"

func ckptName(seq uint64) string { return fmt.Sprintf("%s%020d", ckptPrefix, seq) }

// openCheckpoints lists the checkpoints of dir and removes leftovers of interrupted ones: the
// service that owns dir calls it, with the grid and budget configured. The grid is the one the
// budget coarsened it to before, if it was coarsened from the same configuration.
func openCheckpoints(dir string, g grid, budget int64) (*checkpoints, error) {
	c, err := listCheckpoints(dir, g, true)
	if err != nil {
		return nil, err
	}
	c.configured, c.budgetSetting = g, budget
	if c.grid, err = loadGrid(dir, g, budget); err != nil {
		return nil, err
	}
	return c, nil
}

// openCheckpointsReadOnly lists the checkpoints of a directory another process owns.
func openCheckpointsReadOnly(dir string) (*checkpoints, error) {
	return listCheckpoints(dir, grid{}, false)
}

// chainedMark names the file that says the checkpoints of a directory are chained (made by
// the filler, sharing their tables). Without it they are an older release's checkpoints of the
// live model, each pinning its own copy of most of the model: the owner removes them, and the
// filler makes the chain.
const chainedMark = "CHAINED"

func listCheckpoints(dir string, g grid, clean bool) (*checkpoints, error) {
	if clean {
		if err := dropUnchained(dir); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("replay: list checkpoints: %w", err)
	}
	c := &checkpoints{dir: dir, grid: g, tail: flushTail}
	for _, e := range ents {
		name := e.Name()
		seq, err := strconv.ParseUint(strings.TrimPrefix(name, ckptPrefix), 10, 64)
		if strings.HasPrefix(name, ckptPrefix) && err == nil {
			c.seqs = append(c.seqs, seq)
			if _, err := os.Stat(filepath.Join(dir, name, rebasedMark)); err == nil {
				c.rebases = append(c.rebases, seq)
			}
			continue
		}
		if name == chainedMark || name == gridFile {
			continue
		}
		if clean {
			// A checkpoint interrupted before its rename: never complete, never used.
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("replay: remove partial checkpoint: %w", err)
			}
		}
	}
	slices.Sort(c.seqs)
	slices.Sort(c.rebases)
	return c, nil
}

// dropUnchained removes the checkpoints of dir unless it is marked as chained, then marks it.
func dropUnchained(dir string) error {
	mark := filepath.Join(dir, chainedMark)
	if _, err := os.Stat(mark); err == nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("replay: list checkpoints: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("replay: remove an unchained checkpoint: %w", err)
		}
	}
	if err := os.WriteFile(mark, []byte("checkpoints made by the filler, sharing their tables\n"), 0o644); err != nil {
		return fmt.Errorf("replay: mark checkpoints chained: %w", err)
	}
	return nil
}

func (c *checkpoints) path(seq uint64) string { return filepath.Join(c.dir, ckptName(seq)) }

// last is the newest checkpoint's sequence, 0 when there is none.
func (c *checkpoints) last() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.seqs) == 0 {
		return 0
	}
	return c.seqs[len(c.seqs)-1]
}

// list returns the sequences kept, ascending.
func (c *checkpoints) list() []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.seqs)
}

// rebasedMark names the file in a checkpoint taken right after a rebase of the chain
// (Service.checkpoint): it starts a segment.
const rebasedMark = "REBASED"

// takeAt checkpoints db, which no one else writes to, as the checkpoint of seq; rebased: db was
// rebased at seq.
func (c *checkpoints) takeAt(db *projections.DB, seq uint64, rebased bool) error {
	tmp, err := os.MkdirTemp(c.dir, "tmp-")
	if err != nil {
		return fmt.Errorf("replay: checkpoint: %w", err)
	}
	os.Remove(tmp) // Pebble wants to create it
	if err := db.Flush(); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := db.Checkpoint(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if rebased {
		if err := os.WriteFile(filepath.Join(tmp, rebasedMark), nil, 0o644); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("replay: mark a rebased checkpoint: %w", err)
		}
	}
	return c.add(tmp, seq, rebased)
}

// add renames a complete checkpoint directory into place as the checkpoint of seq (rebased:
// the first of a segment).
func (c *checkpoints) add(tmp string, seq uint64, rebased bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, found := slices.BinarySearch(c.seqs, seq); found {
		return os.RemoveAll(tmp)
	}
	if err := os.Rename(tmp, c.path(seq)); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("replay: keep checkpoint %d: %w", seq, err)
	}
	i, _ := slices.BinarySearch(c.seqs, seq)
	c.seqs = slices.Insert(c.seqs, i, seq)
	c.added++
	if rebased {
		j, _ := slices.BinarySearch(c.rebases, seq)
		c.rebases = slices.Insert(c.rebases, j, seq)
	}
	if c.disk != nil {
		if err := c.disk.add(seq, c.path(seq)); err != nil {
			return err
		}
	}
	if err := c.thin(); err != nil {
		return err
	}
	return c.coarsen()
}

// maxEvery bounds the coarsening of the grid: past it, the budget is exceeded rather than
// as_of answers replaying more than this many events.
const maxEvery = 1 << 20

// coarsen keeps the checkpoints within the budget by thinning the grid while they pin more than
// the budget allows: first fewer dense checkpoints (halved down to one), then a wider spacing
// (doubled). The filler's checkpoints share their tables, so they pin about the data written
// once (zstd), less than the live model for a history of mostly new records (at 10^6 records:
// 183 MiB for a 203 MiB model). Each rebase (Service.checkpoint) writes the model once more
// (134 MB at 10^6 records); the checkpoints after it link it, and thinning frees a segment
// between two rebases once no checkpoint in it is kept (at one dense checkpoint, about one per
// doubling of age is kept). A history that rewrites the same records over and over pins more,
// and thinning such a chain frees little (a dropped checkpoint's manifest, and tables no kept
// checkpoint links): the spacing then grows to maxEvery, as_of replays more (about 30 µs per
// event), and the budget is still exceeded.
// Spacings stay multiples of one another and the dense window only shrinks, so a thinner grid
// keeps a subset of the checkpoints the finer one wanted and the filler never makes one it
// would drop. The grid reached is saved and taken up again at the next start (grid_state.go),
// unless the configuration changed.
func (c *checkpoints) coarsen() error {
	if c.budget == nil || c.grid.every == 0 {
		return nil
	}
	was := c.grid
	for c.grid.every < maxEvery {
		pinned, err := c.pinned()
		if err != nil {
			return err
		}
		if pinned <= c.budget() {
			break
		}
		if c.grid.dense > 1 {
			c.grid.dense /= 2
		} else {
			// A wider spacing thins the newest checkpoints too (as_of at recent moments
			// replays more). A rebased chain's segments stay (segmentEnds), so past the
			// dense checkpoints it frees their manifests at most: the budget is then
			// exceeded rather than every recent answer slowed.
			wider := grid{every: c.grid.every * 2, dense: c.grid.dense}
			if len(c.rebases) > 0 && c.disk.freedBy(c.offGrid(wider))*minFreed < pinned {
				break
			}
			c.grid = wider
		}
		if err := c.thin(); err != nil {
			return err
		}
	}
	if c.grid == was || c.configured.every == 0 {
		return nil
	}
	return saveGrid(c.dir, gridState{every: c.grid.every, dense: c.grid.dense,
		fromEvery: c.configured.every, fromDense: c.configured.dense, budget: c.budgetSetting})
}

// minFreed: a wider spacing of a rebased chain must free at least 1/minFreed of what the
// checkpoints pin.
const minFreed = 64

// offGrid lists the checkpoints thinning would drop on g. Called with mu held.
func (c *checkpoints) offGrid(g grid) []uint64 {
	if len(c.seqs) == 0 {
		return nil
	}
	newest := c.seqs[len(c.seqs)-1]
	ends := c.segmentEnds()
	var out []uint64
	for _, s := range c.seqs {
		if !ends[s] && (!g.keeps(s, newest) || c.servedByFlushes(g, s, newest)) {
			out = append(out, s)
		}
	}
	return out
}

// flushTail is how many of the newest checkpoints at the grid's spacing stay although the
// flushes of the newest segment serve their moments: the shared base is opened again on a newer
// checkpoint at most every sharedRefresh, and moments after it start from their own
// checkpoint (at 5,000 events/s, 10 s are 50 checkpoints of 1,000).
const flushTail = 64

// servedByFlushes reports whether the checkpoint at seq can go: its segment is read as of its
// flushes, so that the segment's last checkpoint (kept: segmentEnds, or the newest) answers
// its moments as it would (bases.floor and acquireAt read the flush at seq, with the same
// tables below it), and it is not among the newest flushTail spacings of the newest segment
// (those after the shared base's checkpoint). Nothing else reads it: a back-fill starts from
// the newest checkpoint at or below its gap. Each one kept cost its manifest, the list of
// every table it links: at 10^6 records ~123 KB, 42.5 MB for 346 checkpoints. Called with mu
// held.
func (c *checkpoints) servedByFlushes(g grid, seq, newest uint64) bool {
	if c.sharedSeq != 0 && seq > c.sharedSeq {
		return false
	}
	newestSegment := len(c.rebases) == 0 || seq >= c.rebases[len(c.rebases)-1]
	if newestSegment && newest-seq < c.tail*g.every {
		return false
	}
	if len(c.rebases) > 0 && seq >= c.rebases[0] {
		return true
	}
	return c.firstTagged
}

// setFirstTagged records that the chain's first segment is read as of its flushes, and drops
// the checkpoints that no longer need to stay.
func (c *checkpoints) setFirstTagged() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.firstTagged = true
	return c.thin()
}

// setShared records the shared base's checkpoint and drops what it now serves.
func (c *checkpoints) setShared(seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sharedSeq = seq
	return c.thin()
}

// firstSegmentEnd is the last checkpoint of the chain's first segment (before its first
// rebase; the newest without one), 0 when there is none.
func (c *checkpoints) firstSegmentEnd() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	end := uint64(0)
	for _, s := range c.seqs {
		if len(c.rebases) > 0 && s >= c.rebases[0] {
			break
		}
		end = s
	}
	return end
}

// pinned is what the checkpoints cost on disk beyond the live model: files are hard links, so
// each counts once, and those the live model still links (an old data directory's checkpoints
// of the live model) count nothing. Called with mu held.
func (c *checkpoints) pinned() (int64, error) {
	if c.disk == nil {
		c.disk = newDiskShare()
		for _, seq := range c.seqs {
			if err := c.disk.add(seq, c.path(seq)); err != nil {
				return 0, err
			}
		}
	}
	total := c.disk.total
	if c.live != "" {
		// Only the live model's files that checkpoints link count, and their sizes are known.
		err := dirFiles(c.live, func(fileID) bool { return true }, func(_ string, id fileID, _ int64) {
			if c.disk.refs[id] > 0 {
				total -= c.disk.size[id]
			}
		})
		if err != nil {
			return 0, fmt.Errorf("replay: checkpoint budget: %w", err)
		}
	}
	return total, nil
}

// spacing is the grid's current spacing of dense checkpoints (tests, the live loop).
func (c *checkpoints) spacing() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.grid.every
}

// missing is grid.missing under the lock (the grid may be coarsened meanwhile).
func (c *checkpoints) missing(prev, next, newest uint64) []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.grid.missing(prev, next, newest)
}

// gaps is missing without the checkpoints thinning would drop at once (servedByFlushes): the
// back-fill of a gap below the newest checkpoint makes only those. (The head makes every one
// at its tip, which the next ones' thinning drops once old: a rebase happens at a checkpoint.)
func (c *checkpoints) gaps(prev, next, newest uint64) []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.DeleteFunc(c.grid.missing(prev, next, newest), func(s uint64) bool {
		return c.servedByFlushes(c.grid, s, newest)
	})
}

// segmentEnds are the checkpoints thinning keeps whatever the grid: each rebase's, and the
// newest before each rebase, the last of the older segment. A segment's last checkpoint reads
// every moment of its segment as of its flushes (bases.acquireSegment): dropped, the moments of
// the segment after the checkpoint kept before it would replay up to the whole segment
// (RebaseTables flushes), or, with no checkpoint kept in it, the segments before it too (the
// budget so thinned a 10^6 chain of five rebases to 5 checkpoints: answers before 1,024,000
// started from the empty model, 33 s each). Called with mu held.
func (c *checkpoints) segmentEnds() map[uint64]bool {
	if len(c.rebases) == 0 {
		return nil
	}
	ends := map[uint64]bool{}
	for _, r := range c.rebases {
		ends[r] = true
		if i, _ := slices.BinarySearch(c.seqs, r); i > 0 {
			ends[c.seqs[i-1]] = true
		}
	}
	return ends
}

// rebaseAfter is the first rebase after seq, where the segment of the chain holding seq ends
// (0: none, seq is in the newest segment).
func (c *checkpoints) rebaseAfter(seq uint64) uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if i, _ := slices.BinarySearch(c.rebases, seq+1); i < len(c.rebases) {
		return c.rebases[i]
	}
	return 0
}

// thin drops the checkpoints the grid no longer keeps (offGrid: the rule coarsen weighs).
func (c *checkpoints) thin() error {
	if c.grid.every == 0 {
		return nil
	}
	dropped := map[uint64]bool{}
	defer func() { c.seqs = slices.DeleteFunc(c.seqs, func(s uint64) bool { return dropped[s] }) }()
	for _, s := range c.offGrid(c.grid) {
		if c.disk != nil {
			c.disk.drop(s)
		}
		dropped[s] = true
		if err := c.remove(s); err != nil {
			return err
		}
	}
	return nil
}

// nearest returns the newest checkpoint at or below seq (0: none, start from an empty model)
// and holds it against thinning until done is called.
func (c *checkpoints) nearest(seq uint64) (found uint64, done func()) {
	c.mu.RLock()
	i, ok := slices.BinarySearch(c.seqs, seq)
	if ok {
		return seq, c.mu.RUnlock
	}
	if i == 0 {
		return 0, c.mu.RUnlock
	}
	return c.seqs[i-1], c.mu.RUnlock
}

// floor is the newest checkpoint at or below seq (0: none), as nearest without holding it.
func (c *checkpoints) floor(seq uint64) uint64 {
	found, done := c.nearest(seq)
	done()
	return found
}

// appliedIn opens a read model directory read-only and reads its applied sequence.
func appliedIn(dir string) (uint64, error) {
	db, err := projections.OpenDB(dir, projections.DBOptions{ReadOnly: true, CacheBytes: 1 << 20})
	if err != nil {
		return 0, err
	}
	seq, err := db.Applied()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return seq, err
}
