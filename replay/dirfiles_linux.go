package replay

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dirFiles lists the regular files of dir by (device, inode) without a stat for each: the
// inode comes with the directory entry (getdents64), the device is the directory's, and only
// a file for which known is false is stat'ed for its size. After a start at 10^6 records the
// checkpoints' disk accounting went over ~730 checkpoints linking ~270,000 entries of a few
// thousand distinct tables: one lstat each was 8.6 % of acld's CPU in the first 20 s of the
// commands workload. An entry whose type the file system does not give is stat'ed.
func dirFiles(dir string, known func(fileID) bool, fn func(name string, id fileID, size int64)) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("replay: no device of %s", dir)
	}
	dev := uint64(st.Dev)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.ReadDirent(int(f.Fd()), buf)
		if err != nil {
			return &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		for b := buf[:n]; len(b) >= direntName; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name (NUL-ended).
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < direntName || reclen > len(b) {
				return fmt.Errorf("replay: bad directory entry in %s", dir)
			}
			ino, typ, name := binary.NativeEndian.Uint64(b[0:8]), b[18], b[direntName:reclen]
			b = b[reclen:]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if string(name) == "." || string(name) == ".." || ino == 0 {
				continue
			}
			switch typ {
			case syscall.DT_REG:
				id := fileID{dev, ino}
				if known(id) {
					fn(string(name), id, -1)
					continue
				}
			case syscall.DT_UNKNOWN:
			default:
				continue // a directory, a link, ...: not a table
			}
			// Stat'ed: a size to learn, or a type to find out. Gone meanwhile: skipped, as
			// statID does.
			fi, err := os.Lstat(filepath.Join(dir, string(name)))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fn(string(name), fileID{uint64(st.Dev), st.Ino}, fi.Size())
			}
		}
	}
}

// direntName is the offset of the name in a linux_dirent64.
const direntName = 19
