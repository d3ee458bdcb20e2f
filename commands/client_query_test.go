package commands

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
)

// withOptions adds min_seq and as_of to a query's JSON object, which must stay valid JSON with
// each field once.
func TestWithOptions(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	cases := []struct {
		body string
		opts []QueryOption
		want string
	}{
		{`{"principal":"bob"}`, nil, `{"principal":"bob"}`},
		{`{"principal":"bob"}`, []QueryOption{MinSeq(0)}, `{"principal":"bob"}`},
		{`{"principal":"bob"}`, []QueryOption{MinSeq(7)}, `{"principal":"bob","min_seq":7}`},
		{`{"principal":"bob"}`, []QueryOption{After(Result{Seq: 3}, Result{Seq: 9}), MinSeq(4)}, `{"principal":"bob","min_seq":9}`},
		{`{}`, []QueryOption{AsOfSeq(12)}, `{"as_of":12}`},
		{`{"a":1}` + "\n", []QueryOption{AsOfTime(at), MinSeq(2)}, `{"a":1,"min_seq":2,"as_of":"2026-03-01T12:00:00.000000005Z"}`},
	}
	for _, c := range cases {
		got := string(withOptions([]byte(c.body), readOptions(c.opts)))
		if got != c.want {
			t.Errorf("%s with %d options: %s, want %s", c.body, len(c.opts), got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: not JSON", got)
		}
	}
}

// An error answer is an *aggregates.Error; any other object is an answer; what is not an
// object is malformed.
func TestAnswerError(t *testing.T) {
	var e *aggregates.Error
	if err := answerError("check", []byte(`{"error":{"code":"not_found","message":"no principal x"}}`)); !errors.As(err, &e) ||
		e.Code != aggregates.CodeNotFound || e.Op != "check" || e.Message != "no principal x" {
		t.Errorf("error answer: %v", err)
	}
	if err := answerError("check", []byte(`{"allowed":true,"seq":3}`)); err != nil {
		t.Errorf("answer: %v", err)
	}
	if err := answerError("check", []byte(`nope`)); err == nil || errors.As(err, &e) {
		t.Errorf("malformed: %v", err)
	}
}

func TestQueryRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{aggregates.Errorf(aggregates.CodeUnavailable, "x"), true},
		{aggregates.Errorf(aggregates.CodeNotCaughtUp, "x"), true},
		{aggregates.Errorf(aggregates.CodeNotFound, "x"), false},
		{aggregates.Errorf(aggregates.CodeForbidden, "x"), false},
		{nats.ErrNoResponders, true},
		{nats.ErrConnectionClosed, false},
		{errors.New("commands: check: malformed answer"), false},
	}
	for _, c := range cases {
		if got := queryRetryable(c.err); got != c.want {
			t.Errorf("%v: retryable %v, want %v", c.err, got, c.want)
		}
	}
}
