package replay

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// copyDB makes a writable copy of a Pebble directory: sstables and blob files, which Pebble
// never changes once written, are hard-linked (a copy costs the same however large the model);
// the manifest, WAL, options and marker files, which Pebble appends to or replaces, are copied.
func copyDB(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("replay: copy %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("replay: copy %s: %w", src, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue // Pebble keeps no subdirectories in a checkpoint
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if immutable(e.Name()) {
			if err := os.Link(from, to); err == nil {
				continue
			}
			// Another file system, or no hard links: fall back to a copy.
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func immutable(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("replay: copy %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replay: copy %s: %w", from, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("replay: copy %s: %w", from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("replay: copy %s: %w", from, err)
	}
	return nil
}
