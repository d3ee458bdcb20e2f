package events

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidToken: the loop agrees with the token's definition as a regular expression, on
// edge cases and random strings over an alphabet of valid and invalid bytes.
func TestValidToken(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	cases := []string{"", "a", "A-b_9", strings.Repeat("x", 64), strings.Repeat("x", 65), "a b", "a.b",
		"é", "a\x00", "-", "_", "a/b", "Z", "a*", ">", "a\n"}
	const alphabet = "aZ09_-.* >é\x00\xff"
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		for range r.IntN(70) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		if got, want := ValidToken(s), re.MatchString(s); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestAppendSubject: AppendSubject appends what the subject's definition gives (Subject's
// result before it was written with AppendSubject), leaves dst as it was on an error, fits in
// MaxSubject, and needs no allocation into a buffer that holds it.
func TestAppendSubject(t *testing.T) {
	long := strings.Repeat("x", 64)
	for _, tc := range []struct {
		tenant string
		ref    AggregateRef
		want   string // "" for an error
	}{
		{"acme", TenantRef("acme"), "acl.events.acme.tenant.acme"},
		{"acme", PrincipalRef("bob"), "acl.events.acme.principal.bob"},
		{"acme", RecordAggregate("case", "c-1"), "acl.events.acme.record.case.c-1"},
		{long, RecordAggregate(long, long), "acl.events." + long + ".record." + long + "." + long},
		{"acme", RecordAggregate("ca.se", "c1"), ""},
		{"acme", RecordAggregate("", "c1"), ""},
		{"ac me", PrincipalRef("bob"), ""},
		{"acme", PrincipalRef(""), ""},
		{"acme", AggregateRef{Kind: "unit", ID: "u1"}, ""},
	} {
		got, err := AppendSubject([]byte("x|"), tc.tenant, tc.ref)
		s, serr := Subject(tc.tenant, tc.ref)
		if tc.want == "" {
			if err == nil || serr == nil || string(got) != "x|" {
				t.Fatalf("%s %+v: %q, %v (Subject %v); want an error and dst unchanged", tc.tenant, tc.ref, got, err, serr)
			}
			continue
		}
		if err != nil || string(got) != "x|"+tc.want || s != tc.want || serr != nil {
			t.Fatalf("%s %+v: %q, %v (Subject %q, %v); want %q", tc.tenant, tc.ref, got, err, s, serr, tc.want)
		}
		if len(tc.want) > MaxSubject {
			t.Fatalf("%q is longer than MaxSubject %d", tc.want, MaxSubject)
		}
	}
	if n := len("acl.events." + long + ".record." + long + "." + long); n != MaxSubject {
		t.Fatalf("longest subject %d bytes; MaxSubject %d", n, MaxSubject)
	}
	ref := RecordAggregate("case", "c1")
	if n := testing.AllocsPerRun(100, func() {
		var buf [MaxSubject]byte
		if _, err := AppendSubject(buf[:0], "acme", ref); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("AppendSubject into a buffer: %.0f allocations", n)
	}
}
