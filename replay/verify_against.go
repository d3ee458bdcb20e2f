package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// VerifyAgainst rebuilds model from the stream up to the sequence the model in dir has applied,
// into a temporary directory under tmp, and compares the two key by key. dir must not be open
// elsewhere: a checkpoint (CopyLatestCheckpoint), or a model of a stopped acld.
func VerifyAgainst(ctx context.Context, store Source, dir string, model Model, tmp string, progress func(Progress)) (Report, error) {
	seq, err := appliedIn(dir)
	if err != nil {
		return Report{}, err
	}
	if seq == 0 {
		return Report{}, fmt.Errorf("replay: verify: %s has applied nothing", dir)
	}
	rebuilt, err := os.MkdirTemp(tmp, "verify-")
	if err != nil {
		return Report{}, fmt.Errorf("replay: verify: %w", err)
	}
	defer os.RemoveAll(rebuilt)
	if _, err := Rebuild(ctx, store, rebuilt, model, seq, progress); err != nil {
		return Report{}, err
	}
	return Verify(dir, rebuilt)
}

// CopyLatestCheckpoint copies (hard links) the newest read-model checkpoint that acld keeps in
// replayDir (<data>/replay) to dst, which must not exist, and returns its sequence. A copy is
// safe from acld thinning its checkpoints meanwhile.
func CopyLatestCheckpoint(replayDir, dst string) (uint64, error) {
	c, err := openCheckpointsReadOnly(filepath.Join(replayDir, "checkpoints"))
	if err != nil {
		return 0, err
	}
	seqs := c.list()
	for i := len(seqs) - 1; i >= 0; i-- {
		err := copyDB(c.path(seqs[i]), dst)
		if err == nil {
			return seqs[i], nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		os.RemoveAll(dst) // dropped while copying: take the one before
	}
	return 0, fmt.Errorf("replay: no checkpoint in %s (acld keeps one every --checkpoint-every events)", replayDir)
}
