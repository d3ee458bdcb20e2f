//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestImportLocksItsProgressFile: a second import keeping its progress in the same file is
// refused while the first runs (two runs of one input share <file>.progress by default and
// would resume from each other's lines), and may run once the first is done.
func TestImportLocksItsProgressFile(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "data.jsonl.progress")
	unlock, err := lockProgress(prog)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockProgress(prog); err == nil || !strings.Contains(err.Error(), "another import") {
		t.Fatalf("second import on the same progress file: %v, want refused", err)
	}
	other, err := lockProgress(prog + "2")
	if err != nil {
		t.Fatalf("an import with its own progress file: %v", err)
	}
	other()
	unlock()
	again, err := lockProgress(prog)
	if err != nil {
		t.Fatalf("after the first import: %v", err)
	}
	again()
}
