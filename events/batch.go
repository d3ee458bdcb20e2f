package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of JetStream atomic batch publish (ADR-50). nats.go v1.55 has no API for it.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	// maxBatch is the server's limit of messages in one atomic batch.
	maxBatch = 1000
	// batchWait bounds the commit request when ctx has no deadline (the server drops an
	// unfinished batch after 10s).
	batchWait = 10 * time.Second
)

// BatchItem is one message of an atomic batch.
type BatchItem struct {
	Subject  string
	Expected uint64 // expected last sequence of Subject; 0 means "no message yet"
	// Follows: the item writes a subject an earlier item of the same batch wrote, and carries
	// no expected sequence (the server refuses one there). The earlier item's check covers it:
	// the batch is stored whole or not at all, with nothing in between.
	Follows bool
	MsgID   string
	Events  []Envelope
}

// batchAck is the server's answer to the commit of a batch.
type batchAck struct {
	Seq   uint64              `json:"seq"`
	Count int                 `json:"count"`
	Error *jetstream.APIError `json:"error,omitempty"`
}

// AppendAtomic publishes several messages as one atomic batch: all stored or none. Each item is
// validated as in Append, and a subject may appear once. Every expected sequence is checked at
// commit; one that fails stores nothing and wraps ErrConflict. The returned Seq is the last
// message's. Atomic batches are ~30x slower than plain appends on file storage: keep them for
// commands that must write two aggregates at once.
//
// A retry of a committed batch (same message ids inside the duplicate window) returns the
// original sequence with Duplicate set when the last item's subject still ends with that
// batch's message; otherwise it wraps ErrConflict (reload and decide again).
func (s *Store) AppendAtomic(ctx context.Context, items []BatchItem) (Appended, error) {
	app, _, err := s.appendAtomic(ctx, items, false)
	return app, err
}

// AppendAtomicData is AppendAtomic, and also returns the data of each item's envelopes as
// Decode gives it (the validation before sending decoded them; see Pending.Data), whatever
// the store answered: the values are the caller's.
func (s *Store) AppendAtomicData(ctx context.Context, items []BatchItem) (Appended, [][]Data, error) {
	return s.appendAtomic(ctx, items, true)
}

func (s *Store) appendAtomic(ctx context.Context, items []BatchItem, keep bool) (Appended, [][]Data, error) {
	switch {
	case len(items) == 0:
		return Appended{}, nil, fmt.Errorf("events: append batch: %w: no item", ErrInvalid)
	case len(items) > maxBatch:
		return Appended{}, nil, fmt.Errorf("events: append batch: %w: %d items, at most %d", ErrInvalid, len(items), maxBatch)
	case len(items) == 1:
		it := items[0]
		app, data, err := s.append(ctx, it.Subject, it.Expected, it.MsgID, it.Events, keep)
		if data == nil {
			return app, nil, err
		}
		return app, [][]Data{data}, err
	}
	msgs, data, err := batchMessages(items, keep)
	if err != nil {
		return Appended{}, nil, fmt.Errorf("events: append batch: %w", err)
	}
	ack, err := s.publishBatch(ctx, msgs)
	if err != nil {
		return Appended{}, data, fmt.Errorf("events: append batch of %d (first %s): %w", len(items), items[0].Subject, err)
	}
	if ack.Error != nil && ack.Error.ErrorCode == codeBatchDuplicate {
		app, err := s.batchDuplicate(ctx, items[len(items)-1], ack.Error)
		return app, data, err
	}
	if ack.Error != nil {
		return Appended{}, data, fmt.Errorf("events: append batch of %d (first %s): %w", len(items), items[0].Subject, mapErr(ack.Error))
	}
	return Appended{Seq: ack.Seq, Count: ack.Count}, data, nil
}

// batchMessages validates every item before anything is sent and builds the messages with
// their batch headers; with keep, it returns the data of each item's envelopes as decoded.
func batchMessages(items []BatchItem, keep bool) ([]*nats.Msg, [][]Data, error) {
	id := uuid.NewString() // at most 64 characters
	subjects := make(map[string]bool, len(items))
	ids := make(map[string]bool, len(items))
	msgs := make([]*nats.Msg, len(items))
	var data [][]Data
	if keep {
		data = make([][]Data, len(items))
	}
	for i, it := range items {
		if subjects[it.Subject] != it.Follows {
			// The server refuses an expected sequence on a subject written earlier in the
			// batch; an item without one must follow an item that has one.
			if it.Follows {
				return nil, nil, fmt.Errorf("%w: item %d (%s) follows no earlier item of its subject", ErrInvalid, i, it.Subject)
			}
			return nil, nil, fmt.Errorf("%w: subject %s twice in one batch", ErrInvalid, it.Subject)
		}
		subjects[it.Subject] = true
		if it.MsgID != "" && ids[it.MsgID] {
			// The server would refuse the whole batch as a duplicate.
			return nil, nil, fmt.Errorf("%w: message id %s twice in one batch", ErrInvalid, it.MsgID)
		}
		ids[it.MsgID] = true
		m, d, err := newMessage(it.Subject, it.Expected, it.MsgID, it.Events, keep)
		if err != nil {
			return nil, nil, fmt.Errorf("item %d (%s): %w", i, it.Subject, err)
		}
		if keep {
			data[i] = d
		}
		if it.Follows {
			m.Header.Del(jetstream.ExpectedLastSubjSeqHeader)
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		msgs[i] = m
	}
	msgs[len(msgs)-1].Header.Set(hdrBatchCommit, "1")
	return msgs, data, nil
}

// publishBatch sends messages 1..N-1 by core publish (the server stages them) and the last,
// which carries the commit header, as a request whose answer is the batch's ack. One
// connection keeps the order.
func (s *Store) publishBatch(ctx context.Context, msgs []*nats.Msg) (batchAck, error) {
	for _, m := range msgs[:len(msgs)-1] {
		if err := s.nc.PublishMsg(m); err != nil {
			return batchAck{}, mapErr(err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, batchWait)
		defer cancel()
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, msgs[len(msgs)-1])
	if err != nil {
		return batchAck{}, mapErr(err)
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return batchAck{}, fmt.Errorf("events: batch ack %q: %w", resp.Data, err)
	}
	return ack, nil
}

// batchDuplicate answers a batch refused because a message id was already stored: the retry
// of a committed batch if the last item's message id is the first message of its subject after
// its expected sequence.
func (s *Store) batchDuplicate(ctx context.Context, last BatchItem, cause error) (Appended, error) {
	seq, ok, err := s.findOriginal(ctx, last.Subject, last.Expected, last.MsgID)
	if err != nil {
		return Appended{}, fmt.Errorf("events: append batch: check duplicate on %s: %w", last.Subject, err)
	}
	if ok {
		return Appended{Seq: seq, Duplicate: true}, nil
	}
	return Appended{}, fmt.Errorf("events: append batch: %w: a message id of the batch was already stored: %w", ErrConflict, cause)
}
