package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes this package maps to its own errors.
const (
	codeWrongLastSeq         = 10071 // JSStreamWrongLastSequenceErrF
	codeWrongLastSeqConstant = 10164 // JSStreamWrongLastSequenceConstantErr (replicated streams, batches)
	codeBatchDuplicate       = 10201 // JSAtomicPublishContainsDuplicateMessageErr
	codeNoMessage            = 10037 // JSNoMessageFoundErr
)

// mapErr adds this package's error kind to a NATS or JetStream error, keeping the original in
// the chain: a wrong last sequence becomes ErrConflict; no responders, timeouts, a closed
// connection and 503 API errors (no leader, offline) become ErrUnavailable; a message above the
// payload limit becomes ErrInvalid. Other errors are returned as they are.
// codeDuplicateInProcess is JetStream's "duplicate message id is in process" (409).
const codeDuplicateInProcess jetstream.ErrorCode = 10158

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.ErrorCode == codeWrongLastSeq || apiErr.ErrorCode == codeWrongLastSeqConstant:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case apiErr.Code == 503, apiErr.ErrorCode == codeDuplicateInProcess:
			// 10158: a publish with this message id is still being proposed (a retry of an
			// unanswered append while the cluster is busy): it is not known yet whether it
			// will be stored, which is what unavailable says.
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrDisconnected):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
