package main

import "testing"

// TestPadFor: the pad reserves the memtables' allowance they do not use, never less than
// nothing, so that the shared cache keeps --cache-mb of blocks whether the memtables are
// empty (after a start) or full (under writes).
func TestPadFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name                  string
		reserve, used, unseen int64
		want                  int64
	}{
		{"memtables small after a start", 80 * mb, 3 * mb, 8 * mb, 69 * mb},
		{"memtables full under writes", 80 * mb, 72 * mb, 8 * mb, 0},
		{"more in use than allowed", 80 * mb, 90 * mb, 8 * mb, 0},
		{"none open yet", 80 * mb, 0, 8 * mb, 72 * mb},
	} {
		if got := padFor(c.reserve, c.used, c.unseen); got != c.want {
			t.Errorf("%s: pad %d MiB, want %d", c.name, got/mb, c.want/mb)
		}
	}
}
