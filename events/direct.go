package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// loadBatch is how many messages one direct get request asks for.
	loadBatch = 1000
	// loadSingles is how many messages a load after a sequence reads one direct get each
	// before it goes on in batches (Store.Load).
	loadSingles = 64
	// directWait bounds a direct get when ctx has no deadline.
	directWait = 5 * time.Second
)

// directGetRequest is the body of $JS.API.DIRECT.GET.<stream> (nats-server JSApiMsgGetRequest);
// nats.go v1.55 exposes neither its batch nor its start_time form.
type directGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// directGet sends a batched direct get and hands each message to fn until fn says stop, the
// server reports the end of the batch with nothing pending, or nothing matches. When the
// server cut a batch short (Nats-Num-Pending > 0) it asks again from the next sequence.
func (s *Store) directGet(ctx context.Context, req directGetRequest, fn func(*nats.Msg) (more bool, err error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, directWait)
		defer cancel()
	}
	inbox := s.nc.NewInbox()
	// A channel sized for one batch: SubscribeSync would allocate a 64k-slot channel (512 KiB)
	// for every load, which showed as 17% of the command service's CPU in memory clearing.
	ch := make(chan *nats.Msg, loadBatch+16)
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("direct get: subscribe: %w", mapErr(err))
	}
	defer sub.Unsubscribe() //nolint:errcheck // nothing to do about it
	subject := "$JS.API.DIRECT.GET." + s.name
	for {
		body, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		if err := s.nc.PublishRequest(subject, inbox, body); err != nil {
			return fmt.Errorf("direct get: %w", mapErr(err))
		}
		last, pending, err := readBatch(ctx, ch, fn)
		if err != nil || !pending {
			return err
		}
		req.Seq, req.StartTime = last+1, nil
	}
}

// directNext hands fn subject's messages from seq on, one direct get request each (no batch),
// until fn says stop or nothing more matches. A batched request makes nats-server count the
// subject's messages after its start sequence first (fileStore.NumPending, for the batch's
// Nats-Num-Pending header): from the stream's start that is the subject's total, after it the
// server loads and decompresses the 8 MB message blocks from the subject's first to the start
// sequence, or from there to the end, whose per-subject state it does not hold. Right after a
// start at 10^6 records that was a fifth of acld's CPU for the read of a tenant's messages
// after its snapshot, which every command waited for. A single get only reads (LoadNextMsg).
func (s *Store) directNext(ctx context.Context, subject string, seq uint64, fn func(*nats.Msg) (more bool, err error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, directWait)
		defer cancel()
	}
	api := "$JS.API.DIRECT.GET." + s.name
	for {
		body, err := json.Marshal(directGetRequest{Seq: seq, NextFor: subject})
		if err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		m, err := s.nc.RequestWithContext(ctx, api, body)
		if err != nil {
			return fmt.Errorf("direct get: %w", mapErr(err))
		}
		if end, err := directStatus(m); end || err != nil {
			return err
		}
		if more, err := fn(m); err != nil || !more {
			return err
		}
		last, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
		if err != nil {
			return fmt.Errorf("direct get: bad sequence header: %w", err)
		}
		seq = last + 1
	}
}

// readBatch reads the answers to one direct get request. pending reports that the server cut
// the batch short and fn wants more; last is the last sequence handed to fn.
func readBatch(ctx context.Context, ch <-chan *nats.Msg, fn func(*nats.Msg) (bool, error)) (last uint64, pending bool, err error) {
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return last, false, fmt.Errorf("direct get: %w", mapErr(ctx.Err()))
		}
		if m.Header.Get("Status") == "204" { // end of batch
			return last, last > 0 && m.Header.Get("Nats-Num-Pending") != "0", nil
		}
		if end, err := directStatus(m); end || err != nil {
			return last, false, err
		}
		more, err := fn(m)
		if err != nil || !more {
			return last, false, err
		}
		last, _ = strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
	}
}

// directStatus reads the status of a direct get's answer: a message (neither), nothing (more)
// matching (end), or an error the server answered.
func directStatus(m *nats.Msg) (end bool, err error) {
	switch m.Header.Get("Status") {
	case "":
		return false, nil
	case "404":
		return true, nil
	case "503":
		return true, fmt.Errorf("direct get: %w: no responders", ErrUnavailable)
	default:
		return true, fmt.Errorf("direct get: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
}

// directMessage decodes a message answered by a direct get.
func directMessage(m *nats.Msg) (Message, error) {
	raw, err := directRaw(m)
	if err != nil {
		return Message{}, err
	}
	return raw.Decode()
}

// directRaw reads a message answered by a direct get without decoding its data.
func directRaw(m *nats.Msg) (RawMessage, error) {
	seq, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
	if err != nil {
		return RawMessage{}, fmt.Errorf("direct get: bad sequence header: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, m.Header.Get(nats.JSTimeStamp))
	if err != nil {
		return RawMessage{}, fmt.Errorf("direct get: bad time header: %w", err)
	}
	return RawMessage{Seq: seq, Subject: m.Header.Get(nats.JSSubject), Time: t, Data: m.Data}, nil
}

// RawMessage is a stored message as the stream holds it, its data (a JSON array of envelopes)
// not decoded: what a copy of the stream keeps (replay's event log).
type RawMessage struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Data    []byte
}

// Decode decodes m's envelopes, as a follower would have handed them over.
func (m RawMessage) Decode() (Message, error) {
	return decodeMessage(m.Subject, m.Seq, m.Time, m.Data)
}

// Raw returns m as the stream stores it: the data a follow read, else m's envelopes encoded again
// as Append stores them (without their Seq, which Decode fills in). Raw then Decode gives m
// back. The data read is the stream's own bytes, for a message Append wrote the same as the
// encoding and for any other the stream's (an encoding again cost the event log an
// allocation of every message's envelopes and their bytes).
func (m Message) Raw() (RawMessage, error) {
	if m.data != nil {
		return RawMessage{Seq: m.Seq, Subject: m.Subject, Time: m.Time, Data: m.data}, nil
	}
	envs := make([]Envelope, len(m.Events))
	copy(envs, m.Events)
	for i := range envs {
		envs[i].Seq = 0
	}
	data, err := encodeEnvelopes(envs)
	if err != nil {
		return RawMessage{}, fmt.Errorf("events: encode message %d: %w", m.Seq, err)
	}
	return RawMessage{Seq: m.Seq, Subject: m.Subject, Time: m.Time, Data: data}, nil
}
