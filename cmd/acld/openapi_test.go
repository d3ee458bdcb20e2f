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
	"github.com/getkin/kin-openapi/routers"
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

	v := newAPIValidator(t, doc, base)
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
		{"tenant", `{}`},
		{"tenant", `{"search":"DEMO.test","limit":2,"cursor":"ann","as_of":` + seq + `}`},
		{"history", `{"principal":"bob","limit":3}`},
		{"history", `{"record":{"type":"invoice","id":"inv-1"},"from":1,"to":` + seq + `}`},
		{"diff", `{"principal":"bob","from":1,"to":` + seq + `}`},
		{"review", `{}`},
		{"review", `{"principals":["bob","cora"],"types":["invoice"],"limit":1,"as_of":` + seq + `}`},
		{"review", `{"limit":2,"cursor":"bob"}`},
		// Errors: each status the description names for them.
		{"check", `{"principal":"nobody","permission":"case.view"}`},
		{"check", `{"principal":"bob","permission":"case.fly"}`},
		{"visible", `{"principal":"bob","type":"case","limit":5000}`}, // outside the description: answered 400
		{"check", `{"principal":"bob","permission":"case.view","min_seq":999999999}`},
	}
	for _, c := range cases {
		v.ask(t, "demo", c.query, c.body, strings.Contains(c.body, "5000"))
	}
}

// apiValidator sends queries to acld over HTTP and checks each request and its answer against
// the OpenAPI description.
type apiValidator struct {
	base   string
	router routers.Router
	n      int // requests checked
}

func newAPIValidator(t *testing.T, doc *openapi3.T, base string) *apiValidator {
	t.Helper()
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &apiValidator{base: base, router: router}
}

// ask sends body to the tenant's query; the request must match the description unless
// outside (a request the description rules out, which acld must answer as described all the
// same), and the answer must. It returns the status and the answer.
func (v *apiValidator) ask(t *testing.T, tenant, query, body string, outside bool) (int, []byte) {
	t.Helper()
	ctx := context.Background()
	url := v.base + "/v1/tenants/" + tenant + "/" + query
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: no route: %v", query, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && !outside {
		t.Fatalf("%s %s: the request does not match the description: %v", query, body, err)
	}
	req2, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(answer)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Fatalf("%s %s: answer %d %s does not match the description: %v", query, body, resp.StatusCode, answer, err)
	}
	v.n++
	return resp.StatusCode, answer
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
