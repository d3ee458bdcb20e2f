package projections

import (
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

// TestValidToken: the query path's token check agrees with events.ValidToken.
func TestValidToken(t *testing.T) {
	for _, s := range []string{"", "a", "A-b_9", strings.Repeat("x", 64), strings.Repeat("x", 65), "a b", "a.b",
		"é", "a\x00", "-", "_", "a/b", "Z"} {
		if got, want := validToken(s), events.ValidToken(s); got != want {
			t.Errorf("validToken(%q) = %v, events.ValidToken says %v", s, got, want)
		}
	}
}
