package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is one stored JetStream message: all the events of one command for one aggregate.
type Message struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Events  []Envelope // each with Seq filled in
	// Expected is the last sequence of the subject that the append of the message stated
	// (its Nats-Expected-Last-Subject-Sequence header, which the stream checked before storing
	// it): the message's aggregate had no message between Expected and Seq. 0 when the append
	// stated none (a creation expects 0 too) or the message was not read by a follow.
	Expected uint64
	// data is the message's data as the stream holds it, when a follow read it (see Raw); nil
	// otherwise. Kept by the follow only, where it is the message's own buffer (a decoding from
	// a Pebble iterator's value would keep a buffer the iterator reuses).
	data []byte
}

// decodeMessage reads the data of a stored message: a JSON array of envelopes.
func decodeMessage(subject string, seq uint64, t time.Time, data []byte) (Message, error) {
	envs, err := decodeEnvelopes(data)
	if err != nil {
		return Message{}, fmt.Errorf("%w: message %d on %s: %v", ErrInvalid, seq, subject, err)
	}
	if len(envs) == 0 {
		return Message{}, fmt.Errorf("%w: message %d on %s has no envelope", ErrInvalid, seq, subject)
	}
	for i := range envs {
		envs[i].Seq = seq
	}
	return Message{Seq: seq, Subject: subject, Time: t, Events: envs}, nil
}

// decodeEnvelopes decodes a JSON array of envelopes: the fast scanner for what Append
// writes, encoding/json for anything else.
func decodeEnvelopes(data []byte) ([]Envelope, error) {
	if envs, ok := fastEnvelopes(data); ok {
		return envs, nil
	}
	var envs []Envelope
	err := json.Unmarshal(data, &envs)
	return envs, err
}

// LastSeq returns the stream's last sequence (0 when empty).
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.StreamInfo(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Load returns the messages of subject with sequence > after, in order. subject may be a
// filter with wildcards. It uses the direct get API (no consumer): from the stream's start
// batched, one request per loadBatch messages; after a sequence one request per message for
// the first loadSingles (see directNext), then batched. On a replicated stream a direct get may
// be served by a replica that is a little behind; an append with the expected sequence still
// catches that as a conflict.
func (s *Store) Load(ctx context.Context, subject string, after uint64) ([]Message, error) {
	var out []Message
	add := func(m *nats.Msg) (bool, error) {
		msg, err := directMessage(m)
		if err != nil {
			return false, err
		}
		out = append(out, msg)
		return true, nil
	}
	var err error
	if after == 0 {
		err = s.directGet(ctx, directGetRequest{Seq: 1, NextFor: subject, Batch: loadBatch}, add)
	} else {
		// Single gets for a short tail (the usual one: a tenant's messages after its
		// snapshot); a long one goes on in batches, whose count of the pending messages is
		// then paid once for many round trips saved (a network's, with --nats-url).
		n := 0
		err = s.directNext(ctx, subject, after+1, func(m *nats.Msg) (bool, error) {
			if _, err := add(m); err != nil {
				return false, err
			}
			n++
			return n < loadSingles, nil
		})
		if err == nil && n == loadSingles {
			err = s.directGet(ctx, directGetRequest{Seq: out[len(out)-1].Seq + 1, NextFor: subject, Batch: loadBatch}, add)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("events: load %s after %d: %w", subject, after, err)
	}
	return out, nil
}

// Newer reports whether subject has a message with sequence > after: one direct get of the
// next message (no batch, see directNext), whose data is not decoded. The command service asks
// it before answering a command that writes nothing, which its store would not have checked.
// On a replicated stream the stream's leader answers (newerFromLeader): a direct get may be
// served by a replica behind it, which does not have a message the leader just acknowledged.
func (s *Store) Newer(ctx context.Context, subject string, after uint64) (bool, error) {
	if s.Replicas() > 1 {
		return s.newerFromLeader(ctx, subject, after)
	}
	found := false
	err := s.directNext(ctx, subject, after+1, func(*nats.Msg) (bool, error) {
		found = true
		return false, nil
	})
	if err != nil {
		return false, fmt.Errorf("events: newer than %d on %s: %w", after, subject, err)
	}
	return found, nil
}

// newerFromLeader is Newer asked of the stream's leader: $JS.API.STREAM.MSG.GET, which only
// the leader answers (the direct get API is answered by every replica), for the next message of
// subject after after.
func (s *Store) newerFromLeader(ctx context.Context, subject string, after uint64) (bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, directWait)
		defer cancel()
	}
	body, err := json.Marshal(directGetRequest{Seq: after + 1, NextFor: subject})
	if err != nil {
		return false, err
	}
	m, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+s.name, body)
	if err != nil {
		return false, fmt.Errorf("events: newer than %d on %s: %w", after, subject, mapErr(err))
	}
	var resp struct {
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return false, fmt.Errorf("events: newer than %d on %s: answer %q: %w", after, subject, m.Data, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == codeNoMessage:
		return false, nil
	case resp.Error != nil:
		return false, fmt.Errorf("events: newer than %d on %s: %w", after, subject, mapErr(resp.Error))
	}
	return resp.Message != nil && resp.Message.Seq > after, nil
}

// LoadRange returns the messages of subject (a filter; wildcards allowed) with from <= seq <=
// to, in order, with the batched direct get API: no consumer to create and delete, so a short
// range (replay's as_of, a few thousand messages) costs one round trip per loadBatch messages.
// A to past the last sequence reads up to the last.
func (s *Store) LoadRange(ctx context.Context, subject string, from, to uint64) ([]Message, error) {
	from = max(from, 1)
	if to < from {
		return nil, nil
	}
	out := make([]Message, 0, min(to-from+1, 1<<12))
	req := directGetRequest{Seq: from, NextFor: subject, Batch: int(min(to-from+1, loadBatch))}
	err := s.directGet(ctx, req, func(m *nats.Msg) (bool, error) {
		msg, err := directMessage(m)
		if err != nil || msg.Seq > to {
			return false, err
		}
		out = append(out, msg)
		return msg.Seq < to, nil
	})
	if err != nil {
		return nil, fmt.Errorf("events: load %s %d..%d: %w", subject, from, to, err)
	}
	return out, nil
}

// SeqAtTime returns the sequence of the last event at or before t (0 if none): the end of the
// longest run of messages from the start whose events all carry a time at or before t (SPEC
// section 7: "the last event at or before it"). An event's time is when its command was decided,
// a little before the server stored it, so the messages stored at or before t all belong, and so
// may a few stored just after t: an as_of at the time history shows for an event includes that
// event. It asks the server for the first message stored after t (direct get by start time, a
// binary search over the store's timestamps) and reads on from it while the events are at or
// before t, at most lateEvents messages; with none stored after t it answers the last sequence at
// call time.
func (s *Store) SeqAtTime(ctx context.Context, t time.Time) (uint64, error) {
	last, err := s.LastSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: sequence at %v: %w", t, err)
	}
	after := t.Add(time.Nanosecond)
	found, within := uint64(0), uint64(0) // the first message stored after t; the last of those at or before t
	n := 0
	err = s.directGet(ctx, directGetRequest{StartTime: &after, Batch: lateBatch}, func(m *nats.Msg) (bool, error) {
		msg, err := directMessage(m)
		if err != nil {
			return false, fmt.Errorf("events: direct get: %w", err)
		}
		if found == 0 {
			found = msg.Seq
		}
		for _, e := range msg.Events {
			if e.Time.After(t) {
				return false, nil
			}
		}
		within = msg.Seq
		n++
		return n < lateEvents, nil
	})
	if err != nil {
		return 0, fmt.Errorf("events: sequence at %v: %w", t, err)
	}
	if found == 0 || found > last+1 {
		return last, nil
	}
	if within > 0 {
		return min(within, last), nil
	}
	return found - 1, nil
}

// lateBatch is how many messages SeqAtTime asks for at once after t, and lateEvents how many it
// reads at most: a command is decided and stored within its timeout, so only the messages of
// the commands in flight at t can be stored after t with events before it.
const (
	lateBatch  = 16
	lateEvents = 4096
)
