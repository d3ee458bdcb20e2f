package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
)

// fetchWorkers bounds the direct gets in flight for one page: a page's sequences are sparse, one
// get costs ~0.2 ms, so a few in parallel keep a 100-event page in a few milliseconds.
const fetchWorkers = 8

// messageGetter fetches stored messages by sequence with the stream's direct get API (the
// stream allows it), so that history pages read only the messages they show.
type messageGetter struct {
	mu     sync.Mutex
	js     jetstream.JetStream
	name   string
	stream jetstream.Stream
}

func newMessageGetter(js jetstream.JetStream, name string) *messageGetter {
	return &messageGetter{js: js, name: name}
}

func (g *messageGetter) handle(ctx context.Context) (jetstream.Stream, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stream != nil {
		return g.stream, nil
	}
	st, err := g.js.Stream(ctx, g.name)
	if err != nil {
		return nil, fmt.Errorf("replay: stream %s: %w", g.name, err)
	}
	g.stream = st
	return st, nil
}

// get returns the message at seq with its envelopes, each with Seq filled in.
func (g *messageGetter) get(ctx context.Context, seq uint64) (events.Message, error) {
	st, err := g.handle(ctx)
	if err != nil {
		return events.Message{}, err
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		return events.Message{}, fmt.Errorf("replay: get message %d: %w", seq, err)
	}
	var envs []events.Envelope
	if err := json.Unmarshal(raw.Data, &envs); err != nil {
		return events.Message{}, fmt.Errorf("replay: message %d on %s: %w", seq, raw.Subject, err)
	}
	for i := range envs {
		envs[i].Seq = seq
	}
	return events.Message{Seq: seq, Subject: raw.Subject, Time: raw.Time, Events: envs}, nil
}

// getAll fetches the messages at seqs, in the same order, a few at a time.
func (g *messageGetter) getAll(ctx context.Context, seqs []uint64) ([]events.Message, error) {
	out := make([]events.Message, len(seqs))
	errs := make([]error, len(seqs))
	sem := make(chan struct{}, fetchWorkers)
	var wg sync.WaitGroup
	for i, s := range seqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = g.get(ctx, s)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
