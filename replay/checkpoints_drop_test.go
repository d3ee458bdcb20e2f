package replay

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/acl-es/acl/events/eventstest"
)

// dropChildEnv, when set, makes TestDropCheckpointsChild drop every checkpoint of the directory
// it names: the process TestDropCheckpointsKill9 kills.
const dropChildEnv = "REPLAY_DROP_CHILD"

// dropFiles is how many files each checkpoint of TestDropCheckpointsKill9 holds: enough that a
// removal takes a while, as a checkpoint linking 1,411 tables at 10^6 records does.
const dropFiles = 1000

func TestDropCheckpointsChild(t *testing.T) {
	dir := os.Getenv(dropChildEnv)
	if dir == "" {
		t.Skip("the process TestDropCheckpointsKill9 kills")
	}
	c, err := openCheckpoints(dir, grid{every: 1, dense: allDense}, -1)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("dropping")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seq := range c.seqs {
		if err := c.remove(seq); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDropCheckpointsKill9: a process killed with SIGKILL while it drops checkpoints (thinning)
// leaves no half-removed checkpoint under a checkpoint's name: the next opening lists only
// whole ones (as_of would open a listed one: its manifest or its tables missing) and removes
// what the kill left.
func TestDropCheckpointsKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a process")
	}
	for round := range 5 {
		dir := t.TempDir()
		for seq := uint64(1); seq <= 4; seq++ {
			p := filepath.Join(dir, ckptName(seq))
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range dropFiles {
				if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("%06d.sst", i)), []byte("table"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, chainedMark), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		child := exec.Command(os.Args[0], "-test.run=^TestDropCheckpointsChild$", "-test.v")
		child.Env = append(os.Environ(), dropChildEnv+"="+dir)
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		for lines.Scan() && lines.Text() != "dropping" {
		}
		// Killed once the removals have begun (some files gone), a few milliseconds later in
		// later rounds: a checkpoint of 1,000 files takes ~5-30 ms to remove.
		eventstest.WaitFor(t, 10*time.Second, func() error {
			if n := tablesUnder(dir); n == 4*dropFiles {
				return fmt.Errorf("no file removed yet")
			}
			return nil
		})
		time.Sleep(time.Duration(round*3) * time.Millisecond)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		c, err := openCheckpoints(dir, grid{every: 1, dense: allDense}, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range c.list() {
			ents, err := os.ReadDir(c.path(seq))
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != dropFiles {
				t.Errorf("round %d: checkpoint %d listed with %d of its %d files", round, seq, len(ents), dropFiles)
			}
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(c.list()) + 1; len(ents) != want {
			t.Errorf("round %d: %d entries left in the directory, want the %d checkpoints listed and CHAINED", round, len(ents), len(c.list()))
		}
		t.Logf("round %d: killed with %d checkpoints left", round, len(c.list()))
	}
}

// tablesUnder counts the tables under dir.
func tablesUnder(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && filepath.Ext(d.Name()) == ".sst" {
			n++
		}
		return nil
	})
	return n
}
