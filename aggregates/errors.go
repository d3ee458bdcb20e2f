package aggregates

import (
	"errors"
	"fmt"
)

// Code is a stable error code, part of the API (SPEC section 5).
type Code string

const (
	CodeInvalidArgument       Code = "invalid_argument"
	CodeNotFound              Code = "not_found"
	CodeAlreadyExists         Code = "already_exists"
	CodeConflict              Code = "conflict"
	CodeForbidden             Code = "forbidden"
	CodeExclusiveRole         Code = "exclusive_role"
	CodeFeatureRequired       Code = "feature_required"
	CodeSeatLimitReached      Code = "seat_limit_reached"
	CodeEmailRequired         Code = "email_required"
	CodePrincipalKindMismatch Code = "principal_kind_mismatch"
	CodeUnknownRole           Code = "unknown_role"
	CodeUnknownPermission     Code = "unknown_permission"
	CodeUnavailable           Code = "unavailable"
	CodeNotCaughtUp           Code = "not_caught_up"
	CodeInternal              Code = "internal"
)

// Error is the product's error: a stable code, the operation, a message a person can act on,
// and the cause if any.
type Error struct {
	Code    Code
	Op      string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Op != "" {
		return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or CodeInternal when err carries none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
