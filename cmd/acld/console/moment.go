package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// moment is a page's ?at= (or a diff's from and to): a stream sequence, a time, or now.
type moment struct {
	seq uint64
	t   time.Time
}

// timeLayouts are the times a moment field accepts: RFC 3339, and what a person types or a
// datetime-local input sends (read as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseMoment reads a moment field: "" is now, digits a sequence, else a time.
func parseMoment(field, s string) (moment, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return moment{}, nil
	}
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
		if seq == 0 {
			return moment{}, aggregates.Errorf(aggregates.CodeInvalidArgument, "%s: sequences start at 1", field)
		}
		return moment{seq: seq}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return moment{t: t.UTC()}, nil
		}
	}
	return moment{}, aggregates.Errorf(aggregates.CodeInvalidArgument,
		"%s %q: give a stream sequence (42) or a time (2026-03-01T12:00:00Z; without a zone, UTC)", field, s)
}

func (m moment) now() bool { return m.seq == 0 && m.t.IsZero() }

// wire is the moment as a query body's as_of: a number or an RFC 3339 string.
func (m moment) wire() any {
	if m.seq > 0 {
		return m.seq
	}
	return m.t.Format(time.RFC3339Nano)
}

// String is the moment as a page's ?at= ("" for now).
func (m moment) String() string {
	switch {
	case m.seq > 0:
		return strconv.FormatUint(m.seq, 10)
	case !m.t.IsZero():
		return m.t.Format(time.RFC3339)
	}
	return ""
}
