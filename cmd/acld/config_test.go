package main

import "testing"

// TestParseFlagsCheckpoints: the as_of grid's two knobs reach the Config, and the defaults are
// the ones the README's figures were measured with.
func TestParseFlagsCheckpoints(t *testing.T) {
	cases := []struct {
		args         []string
		every, dense uint64
	}{
		{nil, 1000, 0},
		{[]string{"--checkpoint-every", "500"}, 500, 0},
		{[]string{"--checkpoints-dense", "128"}, 1000, 128},
	}
	for _, tc := range cases {
		c, err := ParseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if c.CheckpointN != tc.every || c.CheckpointsDense != tc.dense {
			t.Errorf("%v: every %d dense %d; want %d and %d", tc.args, c.CheckpointN, c.CheckpointsDense, tc.every, tc.dense)
		}
	}
}

// TestPprofLoopbackOnly: --pprof serves the runtime's profiles on loopback only, whatever
// --auth or --insecure say: they show internals and a CPU profile costs the server.
func TestPprofLoopbackOnly(t *testing.T) {
	cases := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--pprof", "127.0.0.1:6060"}, true},
		{[]string{"--pprof", "0.0.0.0:6060", "--insecure"}, false},
		{[]string{"--pprof", ":6060", "--auth", "ids.json"}, false},
	}
	for _, tc := range cases {
		if _, err := ParseFlags(tc.args); (err == nil) != tc.ok {
			t.Errorf("%v: %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}

// TestQueryCacheFlag: the query engine's cache of decoded states is sized by --query-cache,
// 100,000 by default (the README's figures), and a size below one is refused rather than
// taken for the default.
func TestQueryCacheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want int
		ok   bool
	}{
		{nil, 100_000, true},
		{[]string{"--query-cache", "5000"}, 5000, true},
		{[]string{"--query-cache", "0"}, 0, false},
		{[]string{"--query-cache", "-1"}, 0, false},
	}
	for _, tc := range cases {
		c, err := ParseFlags(tc.args)
		if (err == nil) != tc.ok {
			t.Fatalf("%v: %v, want ok %v", tc.args, err, tc.ok)
		}
		if tc.ok && c.QueryCache != tc.want {
			t.Errorf("%v: query cache %d, want %d", tc.args, c.QueryCache, tc.want)
		}
	}
}
