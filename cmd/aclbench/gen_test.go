package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
)

func commandsOf(t *testing.T, seed uint64, s Scale) string {
	t.Helper()
	ds, err := NewDataset(seed, s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeCommands(&buf, ds, 0); err != nil {
		t.Fatal(err)
	}
	for _, tn := range ds.Tenants {
		for i := range 50 {
			buf.WriteString(tn.Op("run", i).Name())
		}
	}
	return buf.String()
}

// TestGeneratorDeterministic: the same seed gives the same commands, byte for byte (ids
// included); another seed gives others.
func TestGeneratorDeterministic(t *testing.T) {
	s := Scale{Records: 500, Principals: 100, Tenants: 3, Presets: []string{"trackops", "reconpro", "probuild"}}
	a, b := commandsOf(t, 42, s), commandsOf(t, 42, s)
	if a != b {
		t.Fatal("same seed, different commands")
	}
	c := commandsOf(t, 43, s)
	if a == c {
		t.Fatal("different seeds, same commands")
	}
	// Not just the command ids: the data differs too.
	ids := regexp.MustCompile(`"command_id":"[^"]*"`)
	strip := func(x string) string { return ids.ReplaceAllString(x, "") }
	if strip(a) == strip(c) {
		t.Fatal("different seeds differ only in command ids")
	}
}

// TestItemsIndependent: record i is the same whatever was generated before it, so workloads
// can rebuild any record without the others.
func TestItemsIndependent(t *testing.T) {
	ds, err := NewDataset(7, Scale{Records: 1000})
	if err != nil {
		t.Fatal(err)
	}
	tn := ds.Tenants[0]
	r500 := tn.Record(500)
	for i := range 500 {
		tn.Record(i)
	}
	if got := tn.Record(500); got.ID != r500.ID || len(got.Assignees) != len(r500.Assignees) || got.Client != r500.Client {
		t.Fatalf("record 500 changed: %+v vs %+v", got, r500)
	}
}

// TestDatasetShape checks what the workloads rely on: every preset's tenant has principals of
// every level, client contacts of existing clients, links to records of the right type, and
// principals that the visible and read-your-writes workloads pick.
func TestDatasetShape(t *testing.T) {
	for _, preset := range []string{"trackops", "reconpro", "probuild"} {
		t.Run(preset, func(t *testing.T) {
			ds, err := NewDataset(1, Scale{Records: 2000, Principals: 400, Presets: []string{preset}})
			if err != nil {
				t.Fatal(err)
			}
			tn := ds.Tenants[0]
			levels := map[string]int{}
			for j := range tn.Principals {
				p := tn.Principal(j)
				levels[p.Level]++
				if p.Kind == aggregates.KindClientContact {
					if p.Client == "" {
						t.Fatalf("contact %s without client", p.ID)
					}
				}
			}
			for _, l := range aggregates.Levels {
				if levels[l] == 0 {
					t.Errorf("no principal at level %s: %v", l, levels)
				}
			}
			if c, ok := tn.contactOf(3, 0); ok {
				var j int
				if _, err := fmtSscan(c, &j); err != nil {
					t.Fatal(err)
				}
				if got := tn.Principal(j).Client; got != clientID(3) {
					t.Errorf("contactOf(3) = %s of client %s", c, got)
				}
			}
			for i := range tn.Records {
				r := tn.Record(i)
				for _, l := range r.Links {
					var idx int
					if _, err := fmtSscan(l.ID, &idx); err != nil || tn.recordType(idx) != l.Type {
						t.Fatalf("record %s links to %v, not a record of that type", r.ID, l)
					}
				}
			}
			if len(tn.principalsOf(aggregates.LevelFull, 1)) == 0 || len(tn.principalsOf(aggregates.LevelLimited, 1)) == 0 {
				t.Error("no full or limited principal with the probe role")
			}
			if len(tn.probeRecords(10, 1)) == 0 {
				t.Error("no record of the probe type")
			}
		})
	}
}

// fmtSscan reads the number at the end of an id such as p-0000012 or case-00000034.
func fmtSscan(id string, n *int) (int, error) {
	i := strings.LastIndex(id, "-")
	v, err := parseCount(strings.TrimLeft(id[i+1:], "0") + "0")
	*n = v / 10
	return 1, err
}

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	for v := 1; v <= 100_000; v++ {
		h.record(time32(v))
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100_000
		got := float64(h.quantile(q))
		if got < want*0.98 || got > want*1.02 {
			t.Errorf("q%.3f = %.0f, want %.0f within 2%%", q, got, want)
		}
	}
	if h.quantile(1) != time32(100_000) {
		t.Errorf("max %v", h.quantile(1))
	}
}

func time32(v int) time.Duration { return time.Duration(v) }
