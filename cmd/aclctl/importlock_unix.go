//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockProgress takes the progress file's lock (path + ".lock", an exclusive flock) for the
// import's length, so that two imports keeping their progress in one file (the default, for
// two runs of one input) cannot resume from each other's lines: the second is refused at once.
// The lock goes with the process, a kill included; unlock removes the lock file.
func lockProgress(path string) (unlock func(), err error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("progress lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another import keeps its progress in %s (%s is locked): wait for it, or give this one its own --progress-file", path, name)
		}
		return nil, fmt.Errorf("progress lock: %w", err)
	}
	return func() {
		os.Remove(name)
		f.Close()
	}, nil
}
