//go:build !linux

package replay

import "os"

// dirFiles lists the regular files of dir by (device, inode), each with its size, or -1 when
// known says it is known (see dirfiles_linux.go): here each is stat'ed.
func dirFiles(dir string, known func(fileID) bool, fn func(name string, id fileID, size int64)) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if id, size, ok := statID(e); ok {
			if known(id) {
				size = -1
			}
			fn(e.Name(), id, size)
		}
	}
	return nil
}
