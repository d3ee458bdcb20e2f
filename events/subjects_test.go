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
