package projections

import "testing"

// TestModLog: a key is unchanged since v unless a batch after v wrote it, and nothing seen
// before the floor is trusted once the log starts over.
func TestModLog(t *testing.T) {
	l := newModLog(10, 4)
	l.record(12, []uint64{1, 2})
	l.record(15, []uint64{2})
	tests := []struct {
		name string
		h, v uint64
		want bool
	}{
		{"never written", 3, 10, true},
		{"before the floor", 3, 9, false},
		{"written after v", 1, 11, false},
		{"written at v", 1, 12, true},
		{"written again later", 2, 12, false},
		{"last write at v", 2, 15, true},
	}
	for _, tc := range tests {
		if got := l.unchangedSince(tc.h, tc.v); got != tc.want {
			t.Errorf("%s: unchangedSince(%d, %d) = %v", tc.name, tc.h, tc.v, got)
		}
	}
	l.record(20, []uint64{5, 6, 7}) // over 4 entries: starts over at 20
	if l.unchangedSince(3, 15) || !l.unchangedSince(3, 20) || !l.unchangedSince(5, 20) {
		t.Fatalf("after starting over: floor %d, entries %v", l.floor, l.last)
	}
}
