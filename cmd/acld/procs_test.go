package main

import "testing"

func TestProcs(t *testing.T) {
	for _, c := range []struct{ n, cpus, want int }{
		{0, 2, 4},  // default: twice the CPUs
		{0, 1, 2},  // one CPU
		{0, 0, 2},  // never zero
		{3, 2, 3},  // --procs wins
		{1, 16, 1}, // also below the CPUs
	} {
		if got := procs(c.n, c.cpus); got != c.want {
			t.Errorf("procs(%d, %d) = %d, want %d", c.n, c.cpus, got, c.want)
		}
	}
}

func TestProcsFlag(t *testing.T) {
	cfg, err := ParseFlags([]string{"--procs", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Procs != 3 {
		t.Fatalf("--procs 3 gave Procs %d", cfg.Procs)
	}
	cfg, err = ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Procs != 0 {
		t.Fatalf("default Procs %d, want 0 (twice the CPUs)", cfg.Procs)
	}
}
