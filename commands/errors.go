package commands

import (
	"errors"
	"strconv"

	"github.com/acl-es/acl/aggregates"
)

func invalid(format string, args ...any) *aggregates.Error {
	return aggregates.Errorf(aggregates.CodeInvalidArgument, format, args...)
}

func asError(err error) (*aggregates.Error, bool) {
	var e *aggregates.Error
	ok := errors.As(err, &e)
	return e, ok
}

// unavailable wraps a store or transport failure: the client retries with the same command id.
func unavailable(op string, err error) *aggregates.Error {
	return &aggregates.Error{Code: aggregates.CodeUnavailable, Op: op,
		Message: "the event store is unavailable; retry with the same command_id", Err: err}
}

// internal wraps an unexpected failure; its cause is logged, not answered.
func internal(op string, err error) *aggregates.Error {
	return &aggregates.Error{Code: aggregates.CodeInternal, Op: op, Message: "internal error; the service log has the cause", Err: err}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
