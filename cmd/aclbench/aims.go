package main

import (
	"fmt"
	"strings"
)

// aim is one target of issue #7 for a 2-core machine. A result is checked against every aim
// whose workload matches and whose variant starts with the aim's; the scale an aim names
// ("at 10^6 records") is in its text: a result at a smaller scale is checked all the same, and
// the report says at which scale it was measured.
type aim struct {
	workload string
	variant  string // prefix; "" matches every variant
	metric   string // throughput, p50, p99, rss
	bound    float64
	atLeast  bool // throughput: at least bound; latencies and memory: at most
	text     string
}

var aims = []aim{
	{"commands", "clients=16", "throughput", 5000, true, "commands >= 5,000/s with 16 clients"},
	{"projection", "", "throughput", 100_000, true, "projection >= 100,000 events/s"},
	{"check", "inprocess", "throughput", 200_000, true, "check in-process >= 200,000/s"},
	{"check", "inprocess", "p50", 5, false, "check in-process p50 <= 5 µs"},
	{"check", "http", "throughput", 20_000, true, "check over HTTP >= 20,000/s"},
	{"check", "http", "p99", 2000, false, "check over HTTP p99 <= 2 ms"},
	{"visible", "first-page", "p99", 5000, false, "visible first page p99 <= 5 ms (at 10^6 records)"},
	{"ryw", "", "p99", 5_000, false, "read-your-writes p99 <= 5 ms (issue 13)"},
	{"asof", "", "p99", 50_000, false, "as_of p99 <= 50 ms (at 10^6 events)"},
	{"rebuild", "", "throughput", 150_000, true, "rebuild >= 150,000 events/s"},
	{"memory", "", "rss", 200, false, "RSS <= 200 MB (at 10^5 records; 300 MB at 10^6)"},
}

// AimCheck is a result held against one aim.
type AimCheck struct {
	Aim   string  `json:"aim"`
	Value float64 `json:"value"`
	Met   bool    `json:"met"`
	// Off is by how much a missed aim is missed: "-37%" of the throughput aimed at, or "x2.4"
	// of the latency or memory allowed.
	Off string `json:"off,omitempty"`
}

func checkAims(r Result) []AimCheck {
	var out []AimCheck
	for _, a := range aims {
		if a.workload != r.Workload || !strings.HasPrefix(r.Variant, a.variant) {
			continue
		}
		v, ok := metric(r, a.metric)
		if !ok {
			continue
		}
		c := AimCheck{Aim: a.text, Value: v}
		if a.atLeast {
			c.Met = v >= a.bound
			if !c.Met {
				c.Off = fmt.Sprintf("%.0f%%", (v-a.bound)/a.bound*100)
			}
		} else {
			c.Met = v <= a.bound
			if !c.Met {
				c.Off = fmt.Sprintf("x%.1f", v/a.bound)
			}
		}
		out = append(out, c)
	}
	return out
}

func metric(r Result, m string) (float64, bool) {
	switch m {
	case "throughput":
		return r.Throughput, r.Ops > 0
	case "rss":
		return r.Memory.RSSMB, r.Memory.RSSMB > 0
	}
	if r.Latency == nil {
		return 0, false
	}
	switch m {
	case "p50":
		return r.Latency.P50, true
	case "p99":
		return r.Latency.P99, true
	}
	return 0, false
}

func fmtAims(cs []AimCheck) string {
	var parts []string
	for _, c := range cs {
		if c.Met {
			parts = append(parts, "met")
		} else {
			parts = append(parts, "MISSED "+c.Off)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ",")
}
