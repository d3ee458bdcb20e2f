package events

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Messages go from the consumer's callback to fn in two steps, so that a replay does not pay a
// channel operation and a goroutine wake-up per message: the chunker (in the callback) gathers
// decoded messages into chunks while the consumer says more are pending, and the grouper (in
// the follower's goroutine) joins chunks into slices of up to groupMax for fn.
const (
	// groupMax caps the slice handed to fn.
	groupMax = 4096
	// chunkMax caps a chunk; it divides groupMax so that full chunks fill slices exactly.
	chunkMax = 256
	// chanChunks is the channel's capacity in chunks.
	chanChunks = 2 * groupMax / chunkMax
)

// chunk is a run of decoded messages. pending is how many messages the consumer still had to
// deliver after the last one; err, if set, is the decoding error of the message after them.
type chunk struct {
	msgs    []Message
	pending uint64
	err     error
}

// chunker is the consumer callback's side.
type chunker struct {
	mu   sync.Mutex // the ordered consumer may call from a new goroutine after a reset
	ch   chan<- chunk
	done <-chan struct{}
	to   uint64
	cur  []Message
}

// add decodes one message and sends the chunk when it is full, when nothing more is pending
// (live: do not wait), at the sequence to, or on an error.
func (c *chunker) add(m jetstream.Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	meta, err := m.Metadata()
	if err != nil {
		c.send(chunk{msgs: c.cur, err: fmt.Errorf("%w: message metadata: %v", ErrInvalid, err)})
		return
	}
	msg, err := decodeMessage(m.Subject(), meta.Sequence.Stream, meta.Timestamp, m.Data())
	if err != nil {
		c.send(chunk{msgs: c.cur, err: err})
		return
	}
	msg.data = m.Data()
	msg.Expected = expectedOf(m.Headers())
	if c.cur == nil {
		// Sized by what the consumer says is pending: a live follower gets one message at a
		// time, and a chunk of chunkMax for each (18 KiB) was the largest allocation of an
		// import, once per follower and message.
		c.cur = make([]Message, 0, min(chunkMax, meta.NumPending+1))
	}
	c.cur = append(c.cur, msg)
	if len(c.cur) == chunkMax || meta.NumPending == 0 || (c.to > 0 && msg.Seq >= c.to) {
		c.send(chunk{msgs: c.cur, pending: meta.NumPending})
	}
}

// send hands a chunk over unless the follow has ended; the chunker starts a new one.
func (c *chunker) send(ck chunk) {
	c.cur = nil
	select {
	case c.ch <- ck:
	case <-c.done:
	}
}

// grouper is the follower's side.
type grouper struct {
	ch     <-chan chunk
	closed <-chan struct{}
	to     uint64 // 0: no end
	batch  []Message
	rest   chunk // what did not fit in the last slice
}

// next waits for messages, then keeps filling the slice while the consumer says more are
// pending (catching up), then takes what has already arrived (live). It stops at groupMax
// messages and at the sequence to. On an error it returns the messages before it.
func (g *grouper) next(ctx context.Context) ([]Message, error) {
	g.batch = g.batch[:0]
	block := true
	for len(g.batch) < groupMax && !g.reached() {
		ck, ok, err := g.receive(ctx, block)
		if err != nil {
			return g.batch, err
		}
		if !ok {
			break
		}
		room := groupMax - len(g.batch)
		if len(ck.msgs) > room {
			g.rest = chunk{msgs: ck.msgs[room:], pending: ck.pending, err: ck.err}
			ck.msgs, ck.err = ck.msgs[:room], nil
		}
		g.batch = append(g.batch, ck.msgs...)
		if ck.err != nil {
			return g.batch, ck.err
		}
		block = ck.pending > 0
	}
	return g.batch, nil
}

// reached reports that the slice ends at or past the last sequence wanted.
func (g *grouper) reached() bool {
	return g.to > 0 && len(g.batch) > 0 && g.batch[len(g.batch)-1].Seq >= g.to
}

// receive takes the next chunk (first what is left from the last slice); without block it
// reports ok=false when none is there.
func (g *grouper) receive(ctx context.Context, block bool) (chunk, bool, error) {
	if len(g.rest.msgs) > 0 || g.rest.err != nil {
		ck := g.rest
		g.rest = chunk{}
		return ck, true, nil
	}
	if !block {
		select {
		case ck := <-g.ch:
			return ck, true, nil
		default:
			return chunk{}, false, nil
		}
	}
	select {
	case ck := <-g.ch:
		return ck, true, nil
	case <-ctx.Done():
		return chunk{}, false, ctx.Err()
	case <-g.closed:
		return chunk{}, false, fmt.Errorf("%w: consumer closed", ErrUnavailable)
	}
}

// expectedOf reads a stored message's expected last subject sequence; 0 when it has none.
func expectedOf(h nats.Header) uint64 {
	v := h[jetstream.ExpectedLastSubjSeqHeader] // as the store sets it (newMessage): canonical
	if len(v) != 1 {
		return 0
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return 0
	}
	return n
}
