package main

import (
	"net/http"
	"testing"
)

// BenchmarkAuthenticateHTTP: what --auth adds to every HTTP query, per request: a SHA-256 of
// the token and a constant-time comparison with each identity's hash (three identities).
//
//	go test ./cmd/acld -run '^$' -bench AuthenticateHTTP
func BenchmarkAuthenticateHTTP(b *testing.B) {
	ids := writeIdentities(b)
	a, err := LoadAuth(ids.path, queryNames)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://x/v1/tenants/demo/check", nil)
	r.Header.Set("Authorization", "Bearer "+ids.billingToken)
	b.ReportAllocs()
	for b.Loop() {
		if c, err := a.AuthenticateHTTP(r); err != nil || c.Name != "billing" {
			b.Fatal(c, err)
		}
	}
}
