package replay

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestDirFiles: dirFiles finds the regular files a stat of each entry finds (tablesOf; every
// name here ends in .sst), hard links as the file they link, nothing else (directories,
// symbolic links), over more entries than one read of the directory returns; it gives the size
// of each file it is not told is known, and stats none that it is told is known.
func TestDirFiles(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b, filepath.Join(a, "sub.sst")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sizes := map[string]int64{}
	for i := range 3000 { // ~100 KB of entries: several reads of the directory
		name := fmt.Sprintf("%06d.sst", i)
		data := make([]byte, i%97)
		if err := os.WriteFile(filepath.Join(a, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sizes[name] = int64(len(data))
		if i%3 == 0 {
			if err := os.Link(filepath.Join(a, name), filepath.Join(b, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(filepath.Join(a, "000001.sst"), filepath.Join(a, "link.sst")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "000001-own.sst"), []byte("own"), 0o644); err != nil {
		t.Fatal(err)
	}
	sizes["000001-own.sst"] = 3
	for _, dir := range []string{a, b} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := tablesOf(t, dir) // a stat of each entry
			got := map[string]fileID{}
			err := dirFiles(dir, func(fileID) bool { return false }, func(name string, id fileID, size int64) {
				if _, dup := got[name]; dup {
					t.Errorf("%s listed twice", name)
				}
				got[name] = id
				if size != sizes[name] {
					t.Errorf("%s: size %d, want %d", name, size, sizes[name])
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("dirFiles found %d files, a stat of each %d (or other ids)", len(got), len(want))
			}
			known := 0
			err = dirFiles(dir, func(fileID) bool { return true }, func(name string, id fileID, size int64) {
				if size != -1 || id != want[name] {
					t.Errorf("%s known: size %d id %v, want -1 and %v", name, size, id, want[name])
				}
				known++
			})
			if err != nil || known != len(want) {
				t.Fatalf("known files: %d listed, err %v; want %d", known, err, len(want))
			}
		})
	}
	if err := dirFiles(filepath.Join(root, "gone"), func(fileID) bool { return false }, func(string, fileID, int64) {}); err == nil {
		t.Fatal("a missing directory listed without error")
	}
}

// TestDiskShareCountsLinksOnce: checkpoints that link the same tables count each table once,
// with its size, and a table stops counting when the last checkpoint linking it is dropped.
func TestDiskShareCountsLinksOnce(t *testing.T) {
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "1"), filepath.Join(root, "2"), filepath.Join(root, "3")}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(dir, name string, n int) {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(from, to, name string) {
		if err := os.Link(filepath.Join(from, name), filepath.Join(to, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(dirs[0], "1.sst", 100)
	write(dirs[0], "2.sst", 20)
	write(dirs[0], "MANIFEST", 3)
	link(dirs[0], dirs[1], "1.sst")
	link(dirs[0], dirs[1], "2.sst")
	write(dirs[1], "3.sst", 7)
	write(dirs[1], "MANIFEST", 4)
	link(dirs[1], dirs[2], "3.sst")
	write(dirs[2], "MANIFEST", 5)

	d := newDiskShare()
	for i, dir := range dirs {
		if err := d.add(uint64(i+1), dir); err != nil {
			t.Fatal(err)
		}
	}
	if want := int64(100 + 20 + 3 + 7 + 4 + 5); d.total != want {
		t.Fatalf("total %d, want %d", d.total, want)
	}
	d.drop(1)
	if want := int64(100 + 20 + 7 + 4 + 5); d.total != want {
		t.Fatalf("after dropping 1: total %d, want %d", d.total, want)
	}
	d.drop(2)
	if want := int64(7 + 5); d.total != want {
		t.Fatalf("after dropping 2: total %d, want %d", d.total, want)
	}
}

// BenchmarkDiskShare counts 100 checkpoints that link 300 tables each, most of them the
// ones before's (as the filler's chain does), as the first pinned after a start does.
func BenchmarkDiskShare(b *testing.B) {
	root := b.TempDir()
	prev := ""
	for c := range 100 {
		dir := filepath.Join(root, fmt.Sprintf("ckpt-%03d", c))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 300 {
			name := fmt.Sprintf("%06d.sst", c*3+i)
			if prev != "" && i < 297 {
				if err := os.Link(filepath.Join(prev, name), filepath.Join(dir, name)); err == nil {
					continue
				}
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		prev = dir
	}
	b.ResetTimer()
	for range b.N {
		d := newDiskShare()
		for c := range 100 {
			if err := d.add(uint64(c), filepath.Join(root, fmt.Sprintf("ckpt-%03d", c))); err != nil {
				b.Fatal(err)
			}
		}
	}
}
