package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/acl-es/acl/aggregates"
)

// TestTenantQuery: the overview of the demo tenant counts its records per type, lists its roles
// and pages through its principals; search matches an id prefix or part of an email.
func TestTenantQuery(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	seq := itoa(lastSeq(t, m))
	ask := func(body string) aggregates.TenantAnswer {
		t.Helper()
		resp, err := http.Post(base+"/v1/tenants/demo/tenant", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a aggregates.TenantAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
			t.Fatalf("tenant %s: %d %v", body, resp.StatusCode, err)
		}
		return a
	}
	a := ask(`{"min_seq":` + seq + `}`)
	counts := map[string]int{}
	for _, c := range a.Types {
		counts[c.Type] = c.Count
	}
	want := map[string]int{"case": 2, "client": 2, "invoice": 3, "user": 4, "client_contact": 1, "location": 2}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%d records of type %s, want %d (all: %v)", counts[typ], typ, n, a.Types)
		}
	}
	var roles []string
	for _, r := range a.Roles {
		roles = append(roles, r.Role)
	}
	if a.Preset != "trackops" || !slices.Equal(roles, []string{"administrator", "client_contact", "staff"}) {
		t.Errorf("preset %s, roles %v", a.Preset, roles)
	}
	var all []string
	for cursor := ""; ; {
		page := ask(`{"limit":2,"cursor":"` + cursor + `","min_seq":` + seq + `}`)
		if len(page.Principals) > 2 {
			t.Fatalf("page of %d, limit 2", len(page.Principals))
		}
		for _, p := range page.Principals {
			all = append(all, p.Principal)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(all, []string{"ann", "bob", "carl", "cora", "sam"}) {
		t.Errorf("principals paged: %v", all)
	}
	for search, want := range map[string][]string{"c": {"carl", "cora"}, "ACME.test": {"cora"}, "zed": {}} {
		var got []string
		for _, p := range ask(`{"search":"` + search + `"}`).Principals {
			got = append(got, p.Principal)
		}
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Errorf("search %q: %v, want %v", search, got, want)
		}
	}
}
