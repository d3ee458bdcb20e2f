package main

import "testing"

// TestOverRSS: --max-rss-mb fails a run whose memory result is over the bound, passes one under
// it, and fails a run without a memory result rather than passing it unchecked.
func TestOverRSS(t *testing.T) {
	mem := func(mb float64) Result {
		return Result{Workload: "memory", Variant: "after-workloads", Memory: Memory{RSSMB: mb}}
	}
	cases := []struct {
		results []Result
		max     float64
		fails   bool
	}{
		{[]Result{mem(250)}, 300, false},
		{[]Result{mem(350)}, 300, true},
		{[]Result{{Workload: "check"}}, 300, true},
		{[]Result{mem(9999)}, 0, false}, // no bound asked
	}
	for _, tc := range cases {
		r := &Report{Results: tc.results}
		if err := r.overRSS(tc.max); (err != nil) != tc.fails {
			t.Errorf("%+v with max %v: %v, want failure %v", tc.results, tc.max, err, tc.fails)
		}
	}
}
