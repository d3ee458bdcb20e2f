package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestStrictBodies: in every body acld reads (each query over HTTP and NATS, commands over
// NATS), a field name in another case is unknown and a field given twice is refused with
// invalid_argument, beside a control body that is answered. Go's encoding/json would have
// matched "Principal" to principal and kept the last of two "actor"s, so a gateway reading the
// body would see another principal or actor than acld.
func TestStrictBodies(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	last := lastSeq(t, m)
	caughtUp(t, m, last)
	seq := itoa(last)
	nc, err := nats.Connect("", nats.InProcessServer(m.nats))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The good bodies carry no min_seq: first wait until the read model has the demo tenant
	// (under load it lagged behind, and a good query answered not_found).
	if status, a := postJSON(t, base+"/v1/tenants/demo/check", `{"principal":"bob","permission":"case.view","min_seq":`+seq+`}`); status != 200 {
		t.Fatalf("waiting for the read model at %s: HTTP %d %v", seq, status, a)
	}

	queries := []struct{ query, good, caseVariant, duplicate string }{
		{"check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"}}`,
			`{"principal":"bob","Principal":"ann","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"}}`,
			`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"principal":"ann"}`},
		{"check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"}}`,
			`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1","ID":"inv-2"}}`,
			`{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1","id":"inv-2"}}`},
		{"visible", `{"principal":"bob","type":"invoice"}`, `{"principal":"bob","Type":"case"}`, `{"principal":"bob","type":"invoice","type":"case"}`},
		{"permissions", `{"principal":"bob"}`, `{"PRINCIPAL":"bob"}`, `{"principal":"bob","principal":"ann"}`},
		{"principals", `{"record":{"type":"invoice","id":"inv-1"},"permission":"invoice.view"}`,
			`{"record":{"type":"invoice","id":"inv-1"},"Permission":"invoice.view"}`,
			`{"record":{"type":"invoice","id":"inv-1"},"permission":"invoice.view","permission":"case.view"}`},
		{"recipients", `{"record":{"type":"case","id":"case-1"}}`, `{"Record":{"type":"case","id":"case-1"}}`,
			`{"record":{"type":"case","id":"case-1"},"record":{"type":"case","id":"case-2"}}`},
		{"history", `{"principal":"bob"}`, `{"principal":"bob","Limit":1}`, `{"principal":"bob","limit":1,"limit":2}`},
		{"diff", `{"principal":"bob","from":1,"to":` + seq + `}`, `{"principal":"bob","from":1,"To":` + seq + `}`,
			`{"principal":"bob","from":1,"to":` + seq + `,"from":2}`},
		{"check", `{"principal":"bob","permission":"case.view","min_seq":` + seq + `}`,
			`{"principal":"bob","permission":"case.view","Min_Seq":` + seq + `}`,
			`{"principal":"bob","permission":"case.view","min_seq":1,"min_seq":` + seq + `}`},
	}
	for _, q := range queries {
		for _, c := range []struct{ name, body string }{{"good", q.good}, {"case", q.caseVariant}, {"duplicate", q.duplicate}} {
			status, a := postJSON(t, base+"/v1/tenants/demo/"+q.query, c.body)
			msg, err := nc.Request("acl.queries.demo."+q.query, []byte(c.body), 5*time.Second)
			if err != nil {
				t.Fatalf("%s over NATS: %v", q.query, err)
			}
			var n map[string]any
			if err := json.Unmarshal(msg.Data, &n); err != nil {
				t.Fatal(err)
			}
			if c.name == "good" {
				if status != 200 || n["error"] != nil {
					t.Fatalf("%s %s: HTTP %d %v, NATS %v", q.query, c.body, status, a, n)
				}
				continue
			}
			for transport, ans := range map[string]map[string]any{"HTTP": a, "NATS": n} {
				e, _ := ans["error"].(map[string]any)
				if e == nil || e["code"] != "invalid_argument" {
					t.Fatalf("%s %s over %s: %v, want invalid_argument", q.query, c.body, transport, ans)
				}
			}
			if status != 400 {
				t.Fatalf("%s %s: HTTP %d, want 400", q.query, c.body, status)
			}
			if want := map[string]string{"case": "unknown field", "duplicate": "given twice"}[c.name]; !strings.Contains(a["error"].(map[string]any)["message"].(string), want) {
				t.Fatalf("%s %s: message %v does not say %q", q.query, c.body, a["error"], want)
			}
		}
	}

	// Commands: the duplicate actor named in the issue; system first, then alice. Neither
	// reading may win: it is refused, and nothing is written.
	before := lastSeq(t, m)
	commands := []struct{ name, body string }{
		{"duplicate actor", `{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e11","actor":"system","principal":"zed","kind":"staff","actor":"ann"}`},
		{"case-variant actor", `{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e12","actor":"ann","Actor":"system","principal":"zed","kind":"staff"}`},
		{"case-variant principal", `{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e13","actor":"ann","principal":"zed","Principal":"zod","kind":"staff"}`},
		{"duplicate kind", `{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e14","actor":"ann","principal":"zed","kind":"staff","kind":"employee"}`},
	}
	for _, c := range commands {
		msg, err := nc.Request("acl.commands.demo.RegisterPrincipal", []byte(c.body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var ans struct {
			OK    bool `json:"ok"`
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(msg.Data, &ans); err != nil {
			t.Fatal(err)
		}
		if ans.OK || ans.Error.Code != "invalid_argument" {
			t.Fatalf("%s: %s, want invalid_argument", c.name, msg.Data)
		}
	}
	if after := lastSeq(t, m); after != before {
		t.Fatalf("refused commands moved the stream from %d to %d", before, after)
	}
	// The control: the same command, well formed, is applied.
	msg, err := nc.Request("acl.commands.demo.RegisterPrincipal",
		[]byte(`{"command_id":"0192f6c1-7b7e-7c3a-9a51-2f1f5b7c9e15","actor":"ann","principal":"zed","kind":"staff"}`), 5*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"ok":true`) {
		t.Fatalf("control command: %v %s", err, msg.Data)
	}
}
