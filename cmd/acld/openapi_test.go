package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TestOpenAPI: the description acld serves at /openapi.json is a valid OpenAPI 3.1 document,
// describes every query the server answers, and real requests and answers on the demo tenant
// (errors included) validate against it.
func TestOpenAPI(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, openAPI) {
		t.Fatalf("/openapi.json: %d, %d bytes, want the embedded %d", resp.StatusCode, len(served), len(openAPI))
	}
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(served)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("the description is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %s, want 3.1", doc.OpenAPI)
	}
	// Every query the server answers is described, and nothing else.
	var described []string
	for path := range doc.Paths.Map() {
		described = append(described, strings.TrimPrefix(path, "/v1/tenants/{tenant}/"))
	}
	slices.Sort(described)
	if served := m.queries.Names(); !slices.Equal(described, served) {
		t.Fatalf("described %v, served %v", described, served)
	}
	if !slices.Equal(described, sortedCopy(queryNames)) {
		t.Fatalf("described %v, identity files may grant %v", described, queryNames)
	}

	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	seq := itoa(lastSeq(t, m))
	cases := []struct{ query, body string }{
		{"check", `{"principal":"bob","permission":"invoice.view","record":{"type":"invoice","id":"inv-1"},"min_seq":` + seq + `}`},
		{"check", `{"principal":"bob","permission":"invoice.view"}`},
		{"check", `{"principal":"ann","permission":"report.view","as_of":1}`},
		{"visible", `{"principal":"cora","type":"invoice","limit":1}`},
		{"visible", `{"principal":"bob","type":"case","action":"edit","cursor":"case-0"}`},
		{"permissions", `{"principal":"carl"}`},
		{"permissions", `{"principal":"cora","as_of":"2030-01-01T00:00:00Z"}`},
		{"principals", `{"record":{"type":"invoice","id":"inv-1"},"permission":"invoice.view"}`},
		{"recipients", `{"record":{"type":"case","id":"case-1"}}`},
		{"history", `{"principal":"bob","limit":3}`},
		{"history", `{"record":{"type":"invoice","id":"inv-1"},"from":1,"to":` + seq + `}`},
		{"diff", `{"principal":"bob","from":1,"to":` + seq + `}`},
		// Errors: each status the description names for them.
		{"check", `{"principal":"nobody","permission":"case.view"}`},
		{"check", `{"principal":"bob","permission":"case.fly"}`},
		{"visible", `{"principal":"bob","type":"case","limit":5000}`}, // outside the description: answered 400
		{"check", `{"principal":"bob","permission":"case.view","min_seq":999999999}`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/tenants/demo/"+c.query, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s: no route: %v", c.query, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil && !strings.Contains(c.body, "5000") {
			t.Fatalf("%s %s: the request does not match the description: %v", c.query, c.body, err)
		}
		req2, _ := http.NewRequest(http.MethodPost, base+"/v1/tenants/demo/"+c.query, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req2)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Fatalf("%s %s: answer %d %s does not match the description: %v", c.query, c.body, resp.StatusCode, body, err)
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
