package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Appended is the result of an append.
type Appended struct {
	Seq       uint64 // sequence of the (last) message written, or of the original on a duplicate
	Duplicate bool   // the message id was seen inside the duplicate window: nothing was written
	// Count is how many messages an atomic batch stored. They are stored one after another,
	// so item i of n has sequence Seq-n+1+i.
	Count int
}

// Pending is an append sent without waiting for its answer (AppendAsync).
type Pending struct {
	fut      jetstream.PubAckFuture
	subject  string
	expected uint64
	data     []Data
}

// Data is the data of each envelope sent, as Decode gives it (the validation before sending
// decoded it): a caller that applies what it appended to a state of its own needs no second
// decoding. The values are the caller's, one for each envelope, made for this append.
func (p *Pending) Data() []Data { return p.data }

// Wait returns the append's result as Append would: a wrong expected sequence wraps
// ErrConflict, no answer by ctx's end wraps ErrUnavailable (it may have been stored: append
// again with the same message id). A duplicate inside the window has Duplicate set.
func (p *Pending) Wait(ctx context.Context) (Appended, error) {
	select {
	case ack := <-p.fut.Ok():
		return Appended{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
	case err := <-p.fut.Err():
		return Appended{}, fmt.Errorf("events: append %s (expected %d): %w", p.subject, p.expected, mapErr(err))
	case <-ctx.Done():
		return Appended{}, fmt.Errorf("events: append %s (expected %d): %w: %v", p.subject, p.expected, ErrUnavailable, ctx.Err())
	}
}

// AppendAsync sends the append Append would, without waiting for the answer: the bulk path
// (commands.Service.ExecuteBatch) keeps thousands in flight. One connection's publishes are
// stored in the order they were sent. It blocks while JetStream's limit of unanswered
// asynchronous publishes is reached. Validation errors wrap ErrInvalid and send nothing.
func (s *Store) AppendAsync(subject string, expected uint64, msgID string, envs []Envelope) (*Pending, error) {
	msg, data, err := newMessage(subject, expected, msgID, envs, true)
	if err != nil {
		return nil, fmt.Errorf("events: append %s: %w", subject, err)
	}
	fut, err := s.js.PublishMsgAsync(msg)
	if err != nil {
		return nil, fmt.Errorf("events: append %s (expected %d): %w", subject, expected, mapErr(err))
	}
	return &Pending{fut: fut, subject: subject, expected: expected, data: data}, nil
}

// Append publishes one message carrying envs on subject, expecting expected as the subject's last
// sequence (0: none yet), with msgID as Nats-Msg-Id ("" = no de-duplication).
//
// Everything is checked before anything is sent: a bad envelope, a subject that is not the
// aggregate subject of every envelope, or a message id with a line break returns an error
// wrapping ErrInvalid and writes nothing. A wrong expected sequence wraps ErrConflict; no
// answer in time wraps ErrUnavailable (the message may then have been stored: retry with the
// same msgID). A msgID seen inside the duplicate window writes nothing and returns the
// original sequence with Duplicate set.
func (s *Store) Append(ctx context.Context, subject string, expected uint64, msgID string, envs []Envelope) (Appended, error) {
	app, _, err := s.append(ctx, subject, expected, msgID, envs, false)
	return app, err
}

// append is Append; with keep, it also returns the data of envs as the validation decoded it
// (nil when the validation failed).
func (s *Store) append(ctx context.Context, subject string, expected uint64, msgID string, envs []Envelope, keep bool) (Appended, []Data, error) {
	msg, data, err := newMessage(subject, expected, msgID, envs, keep)
	if err != nil {
		return Appended{}, nil, fmt.Errorf("events: append %s: %w", subject, err)
	}
	ack, err := s.publish(ctx, msg, msgID != "")
	if err != nil {
		if errors.Is(err, ErrConflict) {
			// The server checks the expected sequence before the message id, so the retry of
			// an append whose answer was lost is refused as a conflict: recognise it.
			if seq, ok, ferr := s.findOriginal(ctx, subject, expected, msgID); ferr == nil && ok {
				return Appended{Seq: seq, Duplicate: true}, data, nil
			}
		}
		return Appended{}, data, fmt.Errorf("events: append %s (expected %d): %w", subject, expected, err)
	}
	return Appended{Seq: ack.Sequence, Duplicate: ack.Duplicate}, data, nil
}

// appendAttempt bounds one publish of an append. When the stream leader's server dies, a
// publish in flight to it is never acknowledged; waiting for the whole command's deadline left
// a cluster without acknowledgements for that long (9 s). An append with a message id is
// retried instead, with the same id, so that JetStream stores it once: the new leader answers
// within the election time (a few seconds).
const appendAttempt = 2 * time.Second

// maxUnboundedAttempts bounds the retries of an append whose context has no deadline.
const maxUnboundedAttempts = 5

// publish publishes msg, retrying unanswered attempts while ctx allows when retry is set (the
// message carries an id, so a retry cannot store it twice).
func (s *Store) publish(ctx context.Context, msg *nats.Msg, retry bool) (*jetstream.PubAck, error) {
	backoff := 50 * time.Millisecond
	_, bounded := ctx.Deadline()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, appendAttempt)
		ack, err := s.js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return ack, nil
		}
		err = mapErr(err)
		if !retry || !errors.Is(err, ErrUnavailable) || ctx.Err() != nil || (!bounded && attempt == maxUnboundedAttempts) {
			return nil, err
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < backoff+100*time.Millisecond {
			return nil, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// findOriginal looks for an earlier append of msgID on subject made with the same expected
// sequence: if it was stored, it is the first message of subject after expected. This also
// recognises a retry after the duplicate window has passed.
func (s *Store) findOriginal(ctx context.Context, subject string, expected uint64, msgID string) (uint64, bool, error) {
	if msgID == "" {
		return 0, false, nil
	}
	var seq uint64
	err := s.directGet(ctx, directGetRequest{Seq: expected + 1, NextFor: subject, Batch: 1}, func(m *nats.Msg) (bool, error) {
		if m.Header.Get(jetstream.MsgIDHeader) == msgID {
			seq, _ = strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
		}
		return false, nil
	})
	return seq, seq > 0, err
}

// newMessage validates one append and builds its JetStream message: data is the JSON array of
// the envelopes (SPEC section 6), Seq left out. With keep, it returns the data of each envelope
// as the validation decoded it.
func newMessage(subject string, expected uint64, msgID string, envs []Envelope, keep bool) (*nats.Msg, []Data, error) {
	decoded, err := checkAppend(subject, msgID, envs, keep)
	if err != nil {
		return nil, nil, err
	}
	for i := range envs {
		if envs[i].Seq != 0 {
			// Seq is where an event was stored, never part of what is stored.
			envs = slices.Clone(envs)
			for j := range envs {
				envs[j].Seq = 0
			}
			break
		}
	}
	// checkAppend decoded every envelope's data: it is valid JSON.
	data, err := encodeChecked(envs, true)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encode envelopes: %v", ErrInvalid, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	// Set directly: expected 0 must be sent as "0" (the subject must have no message yet). The
	// two values share one array (Header.Set makes one each, for every append); each slice is
	// capped, so a later Add or Set on one of them cannot write into the other.
	vals := [2]string{strconv.FormatUint(expected, 10), msgID}
	shared := vals[:]
	msg.Header[jetstream.ExpectedLastSubjSeqHeader] = shared[0:1:1]
	if msgID != "" {
		msg.Header[jetstream.MsgIDHeader] = shared[1:2:2]
	}
	return msg, decoded, nil
}

// checkAppend is the validation of Append: at least one envelope, each valid, each belonging
// to the aggregate whose subject is subject, and a message id that fits in a header. With
// keep, it returns each envelope's data as Decode gives it.
func checkAppend(subject, msgID string, envs []Envelope, keep bool) ([]Data, error) {
	if err := CheckSubject(subject); err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("%w: no envelope", ErrInvalid)
	}
	if strings.ContainsAny(msgID, "\r\n") {
		return nil, fmt.Errorf("%w: message id %q contains a line break", ErrInvalid, msgID)
	}
	var decoded []Data
	if keep {
		decoded = make([]Data, len(envs))
	}
	for i := range envs {
		e := &envs[i]
		d, err := e.validate()
		if err != nil {
			return nil, err
		}
		if keep {
			decoded[i] = d
		}
		var buf [MaxSubject]byte
		want, err := AppendSubject(buf[:0], e.Tenant, e.Aggregate)
		if err != nil {
			return nil, fmt.Errorf("envelope %s: %w", e.ID, err)
		}
		if string(want) != subject {
			return nil, fmt.Errorf("%w: envelope %s belongs to %s, not %s", ErrInvalid, e.ID, string(want), subject)
		}
	}
	return decoded, nil
}

// CheckSubject reports whether subject is an event subject: Prefix then tokens that each pass
// ValidToken (so no empty token, dot, space or wildcard). The error wraps ErrInvalid.
func CheckSubject(subject string) error {
	rest, ok := strings.CutPrefix(subject, Prefix+".")
	if !ok {
		return fmt.Errorf("%w: subject %q is not under %s", ErrInvalid, subject, Prefix)
	}
	for tok := range strings.SplitSeq(rest, ".") {
		if !ValidToken(tok) {
			return fmt.Errorf("%w: subject %q has bad token %q", ErrInvalid, subject, tok)
		}
	}
	return nil
}
