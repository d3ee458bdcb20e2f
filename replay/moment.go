package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// Moment is a point in the stream's history as the wire gives it (SPEC section 7): a stream
// sequence as a number, or an RFC 3339 time meaning the last event stored at or before it. The
// state at a moment includes the event at its sequence.
type Moment struct {
	Seq  uint64
	Time time.Time // set (UTC) when the moment was given as a time
}

// IsTime reports whether the moment was given as a time.
func (m Moment) IsTime() bool { return !m.Time.IsZero() }

func (m Moment) String() string {
	if m.IsTime() {
		return m.Time.Format(time.RFC3339Nano)
	}
	return strconv.FormatUint(m.Seq, 10)
}

// ParseMoment reads a moment as an operator types it: digits are a sequence, anything else an
// RFC 3339 time (an offset is accepted and read as UTC).
func ParseMoment(s string) (Moment, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Moment{}, invalidf("empty moment: want a stream sequence or an RFC 3339 time")
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Moment{}, invalidf("moment %q: not a stream sequence: %v", s, err)
		}
		return Moment{Seq: seq}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Moment{}, invalidf("moment %q: want a stream sequence or an RFC 3339 time such as 2026-03-01T12:00:00Z", s)
	}
	return Moment{Time: t.UTC()}, nil
}

// UnmarshalJSON accepts a non-negative integer or a string (a time, or digits).
func (m *Moment) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return invalidf("moment %s: %v", b, err)
		}
		v, err := ParseMoment(s)
		if err != nil {
			return err
		}
		*m = v
		return nil
	}
	seq, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return invalidf("moment %s: want a non-negative integer sequence or an RFC 3339 time", b)
	}
	*m = Moment{Seq: seq}
	return nil
}

// MarshalJSON writes a sequence as a number and a time as an RFC 3339 string.
func (m Moment) MarshalJSON() ([]byte, error) {
	if m.IsTime() {
		return json.Marshal(m.Time.Format(time.RFC3339Nano))
	}
	return []byte(strconv.FormatUint(m.Seq, 10)), nil
}

// TimeIndex turns times into sequences: *events.Store.
type TimeIndex interface {
	SeqAtTime(ctx context.Context, t time.Time) (uint64, error)
	LastSeq(ctx context.Context) (uint64, error)
}

// resolve returns the sequence of a moment: itself, or the last message stored at or before the
// time (a future time is the last message: now).
func resolve(ctx context.Context, ti TimeIndex, m Moment) (uint64, error) {
	if !m.IsTime() {
		return m.Seq, nil
	}
	seq, err := ti.SeqAtTime(ctx, m.Time)
	if err != nil {
		return 0, unavailable(err, "resolve time %s to a stream sequence", m)
	}
	return seq, nil
}

func invalidf(format string, args ...any) *aggregates.Error {
	return aggregates.Errorf(aggregates.CodeInvalidArgument, format, args...)
}

func notFoundf(format string, args ...any) *aggregates.Error {
	return aggregates.Errorf(aggregates.CodeNotFound, format, args...)
}

func unavailable(err error, format string, args ...any) *aggregates.Error {
	e := aggregates.Errorf(aggregates.CodeUnavailable, format, args...)
	e.Err = err
	e.Message += ": " + err.Error()
	return e
}
