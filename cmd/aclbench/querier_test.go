package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/projections"
)

// TestHTTPQuerier: the hand-rolled HTTP/1.1 client sends the body the server expects and reads
// answers by Content-Length, by chunks and with Connection: close, and error answers as errors.
func TestHTTPQuerier(t *testing.T) {
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, r.URL.Path+" "+string(b))
		switch {
		case strings.Contains(string(b), `"nobody"`):
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no principal nobody"}}`+"\n")
		case strings.HasSuffix(r.URL.Path, "/visible"):
			w.Write([]byte(`{"ids":["` + strings.Repeat("x", 5000) + `"],`)) // over the write buffer: chunked
			w.(http.Flusher).Flush()
			io.WriteString(w, `"next_cursor":"","seq":3}`)
		case strings.Contains(string(b), `"close"`):
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"allowed":true,"seq":1,"reason":"","grants":[],"events":[]}`)
		case strings.Contains(string(b), `"odd"`):
			io.WriteString(w, `{"seq":1,"allowed":true}`) // another field order: decoded in full
		default:
			io.WriteString(w, `{"allowed":false,"seq":1,"reason":"","grants":[],"events":[]}`)
		}
	}))
	defer srv.Close()
	h := newHTTPQuerier(srv.URL, 2, "")
	defer h.close()
	ctx := context.Background()
	q := projections.CheckQuery{Principal: "bob", Permission: "case.view", Record: &events.RecordRef{Type: "case", ID: "c1"}}
	for range 3 {
		if ok, err := h.check(ctx, "acme", q, 7); ok || err != nil {
			t.Fatalf("check: %v %v", ok, err)
		}
	}
	if want := `/v1/tenants/acme/check {"principal":"bob","permission":"case.view","record":{"type":"case","id":"c1"},"min_seq":7}`; bodies[0] != want {
		t.Fatalf("sent %s, want %s", bodies[0], want)
	}
	for _, p := range []string{"close", "odd", "close"} {
		if ok, err := h.check(ctx, "acme", projections.CheckQuery{Principal: p, Permission: "x"}, 0); !ok || err != nil {
			t.Fatalf("check %s: %v %v", p, ok, err)
		}
	}
	if _, err := h.check(ctx, "acme", projections.CheckQuery{Principal: "nobody", Permission: "x"}, 0); errorCode(err) != "not_found" {
		t.Fatalf("check nobody: %v", err)
	}
	if ok, err := h.check(ctx, "acme", projections.CheckQuery{Principal: `q"uote`, Permission: "x"}, 0); ok || err != nil {
		t.Fatalf("check with an escaped principal: %v %v", ok, err)
	}
	if !strings.Contains(bodies[len(bodies)-1], `"principal":"q\"uote"`) {
		t.Fatalf("escaped body %s", bodies[len(bodies)-1])
	}
	a, err := h.visible(ctx, "acme", projections.VisibleQuery{Principal: "bob", Type: "case"})
	if err != nil || len(a.IDs) != 1 || len(a.IDs[0]) != 5000 || a.Seq != 3 {
		t.Fatalf("visible: %v %+v", err, a)
	}
}
