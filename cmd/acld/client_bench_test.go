package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/commands"
)

// BenchmarkClientCheck: what the Go client (commands.Client.Check) costs over a hand-written
// request for the same check, on each transport: "raw" sends a prepared body and decodes the
// answer into aggregates.CheckAnswer, as a service without the client would; "client" encodes
// the query, sends it, looks for an error answer and decodes. One caller, acld with the demo
// tenant in the same process, NATS over a loopback socket. Besides the time per check it
// reports cpu-ns/op, the process's CPU time (user and system, server included) per check: the
// server's share is the same for both, and CPU time suffers less than wall time from other
// work on a shared machine. -count repeats each sub-benchmark
// in a row; on a shared machine run the whole benchmark several times instead, so that raw and
// client alternate:
//
//	go test -c -o /tmp/acld.test ./cmd/acld
//	for i in 1 2 3 4 5 6 7 8; do /tmp/acld.test -test.run '^$' -test.bench ClientCheck -test.benchmem; done
func BenchmarkClientCheck(b *testing.B) {
	m := startMain(b, func(c *Config) { c.Demo = true; c.NATSListen = "127.0.0.1:-1" })
	base := "http://" + m.HTTPAddr()
	waitReady(b, base)
	ctx := context.Background()
	nc, err := commands.Dial(m.nats.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Conn().Close()
	hc := commands.NewHTTPClient(base, "", nil)
	q := aggregates.CheckQuery{Principal: "bob", Permission: "invoice.view", Record: rec("invoice", "inv-1")}
	if a, err := nc.Check(ctx, "demo", q, commands.MinSeq(lastSeq(b, m))); err != nil || !a.Allowed {
		b.Fatal(a, err)
	}
	body, _ := json.Marshal(q)
	allowed := func(b *testing.B, a aggregates.CheckAnswer, err error) {
		if err != nil || !a.Allowed {
			b.Fatal(a, err)
		}
	}
	b.Run("nats/raw", func(b *testing.B) {
		defer reportCPU(b)()
		raw := nc.Conn()
		b.ReportAllocs()
		for b.Loop() {
			msg, err := raw.Request("acl.queries.demo.check", body, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			var a aggregates.CheckAnswer
			err = json.Unmarshal(msg.Data, &a)
			allowed(b, a, err)
		}
	})
	b.Run("nats/client", func(b *testing.B) {
		defer reportCPU(b)()
		b.ReportAllocs()
		for b.Loop() {
			a, err := nc.Check(ctx, "demo", q)
			allowed(b, a, err)
		}
	})
	b.Run("http/raw", func(b *testing.B) {
		defer reportCPU(b)()
		raw := &http.Client{}
		url := base + "/v1/tenants/demo/check"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := raw.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status, err)
			}
			var a aggregates.CheckAnswer
			err = json.Unmarshal(data, &a)
			allowed(b, a, err)
		}
	})
	b.Run("http/client", func(b *testing.B) {
		defer reportCPU(b)()
		b.ReportAllocs()
		for b.Loop() {
			a, err := hc.Check(ctx, "demo", q)
			allowed(b, a, err)
		}
	})
}

// reportCPU reports the process's CPU time per op when the returned function is called.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
