package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
)

func post(t *testing.T, url, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// errCode reads the code of an error body, "" when the body is an answer.
func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error *struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	if e.Error == nil {
		return ""
	}
	if e.Error.Message == "" {
		t.Fatalf("error without a message: %s", b)
	}
	return e.Error.Code
}

// TestQueriesOverHTTPAndNATS sends good and bad queries over both transports: each gets its
// status and code, NATS answers what HTTP answers, and the server keeps answering afterwards.
func TestQueriesOverHTTPAndNATS(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	good := `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"i1"}}`
	tests := []struct {
		name, query, body string
		status            int
		code              string
		want              string // a fragment of a good answer
	}{
		{"check via link", "check", good, 200, "", `"allowed":true`},
		{"visible", "visible", `{"principal":"bob","type":"invoice"}`, 200, "", `"ids":["i1"],"next_cursor":""`},
		{"visible empty", "visible", `{"principal":"bob","type":"expense"}`, 200, "", `"ids":[]`},
		{"permissions", "permissions", `{"principal":"bob"}`, 200, "", `"level":"limited"`},
		{"principals", "principals", `{"record":{"type":"case","id":"c1"},"permission":"case.view"}`, 200, "", `"principals":["alice","bob","carol"]`},
		{"recipients", "recipients", `{"record":{"type":"case","id":"c1"}}`, 200, "", `"principals":["bob"]`},
		{"unknown principal", "check", `{"principal":"zed","permission":"case.view"}`, 404, "not_found", ""},
		{"unknown record", "check", `{"principal":"bob","permission":"case.view","record":{"type":"case","id":"nope"}}`, 404, "not_found", ""},
		{"unknown permission", "check", `{"principal":"bob","permission":"case.veiw"}`, 400, "unknown_permission", ""},
		{"unknown permission visible", "visible", `{"principal":"bob","type":"case","action":"veiw"}`, 400, "unknown_permission", ""},
		{"malformed JSON", "check", `{"principal":`, 400, "invalid_argument", ""},
		{"empty body", "check", ``, 400, "invalid_argument", ""},
		{"not an object", "check", `[1]`, 400, "invalid_argument", ""},
		{"unknown field", "check", `{"principal":"bob","permission":"case.view","recrd":{}}`, 400, "invalid_argument", ""},
		{"trailing data", "check", good + `{}`, 400, "invalid_argument", ""},
		{"bad principal id", "check", `{"principal":"b b","permission":"case.view"}`, 400, "invalid_argument", ""},
		{"bad cursor", "visible", `{"principal":"bob","type":"case","cursor":"a/b"}`, 400, "invalid_argument", ""},
		{"negative limit", "visible", `{"principal":"bob","type":"case","limit":-1}`, 400, "invalid_argument", ""},
		{"limit over max", "visible", `{"principal":"bob","type":"case","limit":1001}`, 400, "invalid_argument", ""},
		{"min_seq not a number", "check", `{"principal":"bob","permission":"case.view","min_seq":"1"}`, 400, "invalid_argument", ""},
		{"as_of without hook", "check", `{"principal":"bob","permission":"case.view","as_of":3}`, 400, "invalid_argument", ""},
		{"min_seq ahead", "check", `{"principal":"bob","permission":"case.view","min_seq":1000000}`, 503, "not_caught_up", ""},
		{"unknown query", "nosuch", `{}`, 404, "not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := post(t, f.http.URL+"/v1/tenants/acme/"+tc.query, tc.body)
			if status != tc.status || errCode(t, body) != tc.code || !bytes.Contains(body, []byte(tc.want)) {
				t.Fatalf("HTTP %d %s; want %d %q %q", status, body, tc.status, tc.code, tc.want)
			}
			if status == 503 && hdr.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			msg, err := f.env.Conn.Request("acl.queries.acme."+tc.query, []byte(tc.body), 5*time.Second)
			if err != nil {
				t.Fatalf("NATS: %v", err)
			}
			if tc.code == "" && !bytes.Equal(bytes.TrimSpace(msg.Data), bytes.TrimSpace(body)) {
				t.Fatalf("NATS answered %s, HTTP %s", msg.Data, body)
			}
			if got := errCode(t, msg.Data); got != tc.code {
				t.Fatalf("NATS code %q (%s), want %q", got, msg.Data, tc.code)
			}
			// Whatever came before, a good query still gets its answer.
			if status, _, body := post(t, f.http.URL+"/v1/tenants/acme/check", good); status != 200 {
				t.Fatalf("after %s: %d %s", tc.name, status, body)
			}
		})
	}
}

// TestHTTPEdges covers what only HTTP has: paths, methods, body size, health and metrics.
func TestHTTPEdges(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	huge := `{"principal":"` + strings.Repeat("x", MaxBody) + `","permission":"case.view"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"get a query", "GET", "/v1/tenants/acme/check", "", 405, "invalid_argument"},
		{"put a query", "PUT", "/v1/tenants/acme/check", "{}", 405, "invalid_argument"},
		{"huge body", "POST", "/v1/tenants/acme/check", huge, 413, "invalid_argument"},
		{"unknown tenant", "POST", "/v1/tenants/nobody/check", `{"principal":"bob","permission":"case.view"}`, 404, "not_found"},
		{"bad tenant", "POST", "/v1/tenants/a%20b/check", `{"principal":"bob","permission":"case.view"}`, 400, "invalid_argument"},
		{"unknown path", "POST", "/v2/nothing", "{}", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, f.http.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || errCode(t, b) != tc.code {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `acl_query_duration_seconds_bucket{query="check"`,
	} {
		resp, err := http.Get(f.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, b)
		}
		if path == "/metrics" && !strings.Contains(string(b), "acl_projector_applied_sequence") {
			t.Fatalf("metrics without the projector's sequence")
		}
	}
}

// TestReadyzWhileCatchingUp: a projector that has not caught up makes /readyz answer 503.
func TestReadyzWhileCatchingUp(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	idle, err := NewProjector(openDB(t), f.env.Store) // never run: not caught up
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(NewEngine(idle.db, idle, EngineOptions{}), idle, ServerOptions{}).Handler(nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz of an idle projector: %d", resp.StatusCode)
	}
}

// TestReadYourWrites: a query with min_seq set to the sequence of a write sees the write.
func TestReadYourWrites(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	for i := range 30 {
		id := fmt.Sprintf("new%d", i)
		f.record(events.RecordBody{Type: "case", ID: id, Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}}})
		seq := f.flush(t)
		body := fmt.Sprintf(`{"principal":"bob","type":"case","limit":1000,"min_seq":%d}`, seq)
		status, _, b := post(t, f.http.URL+"/v1/tenants/acme/visible", body)
		var a VisibleAnswer
		if status != 200 || json.Unmarshal(b, &a) != nil {
			t.Fatalf("visible: %d %s", status, b)
		}
		if a.Seq < seq || !slices.Contains(a.IDs, id) {
			t.Fatalf("write %d at seq %d not read: answer at seq %d lists %v", i, seq, a.Seq, a.IDs)
		}
	}
}

// TestExtensionPoints: extra handlers registered by name and the as_of hook, as replay uses them.
func TestExtensionPoints(t *testing.T) {
	var got []Moment
	released := 0
	var f *fixture
	f = newFixture(t, ServerOptions{AsOf: func(ctx context.Context, tenant string, at Moment) (*Engine, func(), error) {
		got = append(got, at)
		return f.eng, func() { released++ }, nil
	}})
	f.srv.Handle("history", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			Principal string `json:"principal"`
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return map[string]any{"principal": b.Principal, "as_of": r.AsOf != nil, "seq": 0}, nil
	})
	tests := []struct {
		query, body string
		status      int
		want        string
		moment      *Moment
	}{
		{"history", `{"principal":"bob"}`, 200, `"as_of":false`, nil},
		{"history", `{"principal":"bob","extra":1}`, 400, "invalid_argument", nil},
		{"history", `{"principal":"bob","as_of":4}`, 200, `"as_of":true`, &Moment{Seq: 4}},
		{"check", `{"principal":"bob","permission":"case.view","as_of":"2025-01-01T02:00:00+02:00"}`, 200, `"allowed":true`,
			&Moment{Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"check", `{"principal":"bob","permission":"case.view","as_of":"yesterday"}`, 400, "invalid_argument", nil},
		{"check", `{"principal":"bob","permission":"case.view","as_of":-1}`, 400, "invalid_argument", nil},
	}
	for _, tc := range tests {
		n := len(got)
		status, _, b := post(t, f.http.URL+"/v1/tenants/acme/"+tc.query, tc.body)
		if status != tc.status || !strings.Contains(string(b), tc.want) {
			t.Fatalf("%s %s: %d %s", tc.query, tc.body, status, b)
		}
		if tc.moment != nil && (len(got) != n+1 || !got[n].Time.Equal(tc.moment.Time) || got[n].Seq != tc.moment.Seq) {
			t.Fatalf("%s: hook saw %+v, want %+v", tc.body, got[n:], tc.moment)
		}
	}
	if released != len(got) || released != 2 {
		t.Fatalf("hook called %d times, released %d", len(got), released)
	}
}
