package events

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestMapErr: the JetStream and NATS errors that reach the store map to this package's kinds,
// and the original stays in the chain. Some (10164, 503 without a leader) only happen on a
// cluster, so they are built here.
func TestMapErr(t *testing.T) {
	api := func(code int, errCode jetstream.ErrorCode) error {
		return fmt.Errorf("publish: %w", &jetstream.APIError{Code: code, ErrorCode: errCode, Description: "x"})
	}
	tests := []struct {
		name string
		err  error
		want error // nil: no kind added
	}{
		{"wrong last sequence", api(400, 10071), ErrConflict},
		{"wrong last sequence, replicated", api(400, 10164), ErrConflict},
		{"no leader", api(503, 10008), ErrUnavailable},
		{"stream offline", api(503, 10118), ErrUnavailable},
		{"other API error", api(400, 10059), nil},
		{"no responders", nats.ErrNoResponders, ErrUnavailable},
		{"no stream response", jetstream.ErrNoStreamResponse, ErrUnavailable},
		{"timeout", nats.ErrTimeout, ErrUnavailable},
		{"deadline", context.DeadlineExceeded, ErrUnavailable},
		{"connection closed", nats.ErrConnectionClosed, ErrUnavailable},
		{"too large", nats.ErrMaxPayload, ErrInvalid},
		{"canceled", context.Canceled, nil},
	}
	kinds := []error{ErrConflict, ErrUnavailable, ErrInvalid}
	for _, tc := range tests {
		got := mapErr(tc.err)
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: %v lost the original error", tc.name, got)
		}
		for _, k := range kinds {
			if errors.Is(got, k) != (k == tc.want) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", tc.name, got, k, !(k == tc.want))
			}
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
