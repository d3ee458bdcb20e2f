package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkChangeFeedLatency: on a real acld with the demo tenant, the time from a command's
// answer to its change message: bob (limited staff) is assigned to case-2 and unassigned in
// turn, each command changing what he may see; a subscriber of his feed takes the message
// whose seq is the command's. Reports p50 and p99 (ms) of the commands run.
//
//	go test ./cmd/acld/ -run '^$' -bench ChangeFeedLatency -benchtime 2000x
func BenchmarkChangeFeedLatency(b *testing.B) {
	m := startMain(b, func(c *Config) { c.Demo = true })
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	type arrival struct {
		seq uint64
		at  time.Time
	}
	got := make(chan arrival, 1024)
	sub, err := nc.Subscribe("acl.changes.demo.principal.bob", func(msg *nats.Msg) {
		at := time.Now()
		var c struct {
			Seq uint64 `json:"seq"`
		}
		json.Unmarshal(msg.Data, &c)
		got <- arrival{c.Seq, at}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := "AssignRecord"
		if i%2 == 1 {
			name = "UnassignRecord"
		}
		msg, err := nc.Request("acl.commands.demo."+name, []byte(cmdBody("ann", `"type":"case","id":"case-2","principal":"bob"`)), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		answered := time.Now()
		var a struct {
			OK  bool   `json:"ok"`
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(msg.Data, &a); err != nil || !a.OK {
			b.Fatalf("%s: %s", name, msg.Data)
		}
		for {
			select {
			case c := <-got:
				if c.seq < a.Seq {
					continue
				}
				if c.seq > a.Seq {
					b.Fatalf("change of seq %d before that of %d", c.seq, a.Seq)
				}
				lat = append(lat, max(c.at.Sub(answered), 0))
			case <-time.After(10 * time.Second):
				b.Fatalf("no change message for seq %d", a.Seq)
			}
			break
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
