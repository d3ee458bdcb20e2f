package replay

import (
	"context"
	"time"

	"github.com/acl-es/acl/aggregates"
)

// Moment is a point in the stream's history as the wire gives it (aggregates.Moment).
type Moment = aggregates.Moment

// ParseMoment reads a moment as an operator types it (aggregates.ParseMoment).
func ParseMoment(s string) (Moment, error) { return aggregates.ParseMoment(s) }

// TimeIndex turns times into sequences: *events.Store.
type TimeIndex interface {
	SeqAtTime(ctx context.Context, t time.Time) (uint64, error)
	LastSeq(ctx context.Context) (uint64, error)
}

// resolve returns the sequence of a moment: itself, or that of the last event at or before the
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
