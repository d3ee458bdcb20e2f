package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// BenchmarkCluster measures what the README reports for a three-node cluster in process
// (stream at R3, two acld): commands per second from 16 clients, and read-your-writes across
// instances (a command through the queue group, whichever acld takes it, then a check with its
// seq as min_seq on the other acld's HTTP API).
//
//	go test ./cmd/acld -run '^$' -bench Cluster -benchtime 5s
func BenchmarkCluster(b *testing.B) {
	seedFile, owner := ownerSeedFile(b)
	nodes := startCluster(b, owner)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	var acld []*Main
	for range 2 {
		acld = append(acld, startMain(b, func(c *Config) {
			c.NATSURL, c.NATSNkey, c.Replicas, c.NATSListen, c.StoreWait = strings.Join(urls, ","), seedFile, 3, "", time.Minute
		}))
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request("acl.commands.bc.CreateTenant", []byte(cmdBody("system", `"preset":"trackops","admin":{"principal":"root","kind":"staff","email":"r@c.test"}`)), 10*time.Second); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	register := func(cn *nats.Conn) (uint64, error) {
		body := fmt.Sprintf(`{"command_id":%q,"actor":"root","principal":"p%d","kind":"staff"}`, uuid.NewString(), n.Add(1))
		m, err := cn.Request("acl.commands.bc.RegisterPrincipal", []byte(body), 11*time.Second)
		if err != nil {
			return 0, err
		}
		var a struct {
			OK  bool   `json:"ok"`
			Seq uint64 `json:"seq"`
		}
		if err := jsonUnmarshal(m.Data, &a); err != nil || !a.OK {
			return 0, fmt.Errorf("answer %s", m.Data)
		}
		return a.Seq, nil
	}

	b.Run("commands", func(b *testing.B) {
		b.SetParallelism(8) // 16 clients on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			cn, err := nats.Connect(strings.Join(urls, ","))
			if err != nil {
				b.Error(err)
				return
			}
			defer cn.Close()
			for pb.Next() {
				if _, err := register(cn); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
	})

	b.Run("read-your-writes", func(b *testing.B) {
		other := "http://" + acld[1].HTTPAddr() + "/v1/tenants/bc/check"
		var lat []time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			seq, err := register(nc)
			if err != nil {
				b.Fatal(err)
			}
			body := fmt.Sprintf(`{"principal":"p%d","permission":"session.login","min_seq":%d}`, n.Load(), seq)
			resp, err := http.Post(other, "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("check: %d", resp.StatusCode)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
