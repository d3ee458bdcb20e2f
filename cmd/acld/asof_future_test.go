package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestAsOfFutureAnswersAsNow: as_of (and history's and diff's to) a time after the last event
// answers as now, in every query, over HTTP and NATS: the same answer as without it.
func TestAsOfFutureAnswersAsNow(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	seq := itoa(lastSeq(t, m))
	future := `"` + time.Now().Add(24*time.Hour*365*50).UTC().Format(time.RFC3339) + `"`
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	queries := []struct{ query, now, future string }{
		{"check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":` + seq + `}`,
			`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"as_of":` + future + `}`},
		{"visible", `{"principal":"cora","type":"invoice","min_seq":` + seq + `}`, `{"principal":"cora","type":"invoice","as_of":` + future + `}`},
		{"permissions", `{"principal":"bob","min_seq":` + seq + `}`, `{"principal":"bob","as_of":` + future + `}`},
		{"principals", `{"record":{"type":"invoice","id":"inv-1"},"permission":"invoice.view","min_seq":` + seq + `}`,
			`{"record":{"type":"invoice","id":"inv-1"},"permission":"invoice.view","as_of":` + future + `}`},
		{"recipients", `{"record":{"type":"case","id":"case-1"},"min_seq":` + seq + `}`, `{"record":{"type":"case","id":"case-1"},"as_of":` + future + `}`},
		{"history", `{"principal":"bob","min_seq":` + seq + `}`, `{"principal":"bob","to":` + future + `}`},
		{"diff", `{"principal":"bob","from":1,"to":` + seq + `}`, `{"principal":"bob","from":1,"to":` + future + `}`},
	}
	for _, q := range queries {
		_, now := postJSON(t, base+"/v1/tenants/demo/"+q.query, q.now)
		status, a := postJSON(t, base+"/v1/tenants/demo/"+q.query, q.future)
		if status != 200 {
			t.Fatalf("%s as_of the future over HTTP: %d %v", q.query, status, a)
		}
		msg, err := nc.Request("acl.queries.demo."+q.query, []byte(q.future), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var n map[string]any
		json.Unmarshal(msg.Data, &n)
		if toJSON(n) != toJSON(a) {
			t.Fatalf("%s: NATS %v, HTTP %v", q.query, n, a)
		}
		delete(now, "seq")
		delete(a, "seq")
		if toJSON(now) != toJSON(a) {
			t.Fatalf("%s: as_of the future %v, now %v", q.query, a, now)
		}
	}
}
