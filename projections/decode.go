package projections

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/acl-es/acl/events"
)

// decoded events of a batch, in order. Decoding the events' JSON is a quarter of the
// projector's work while catching up and needs no order, so a large batch is decoded on every
// core before it is applied in order.
type decodedEvent struct {
	e events.Envelope
	d events.Data
	// from is the message's subject and the sequence its append expected: where an offer of
	// its aggregate's state would be (handoff.go).
	from offerKey
}

// parallelDecodeMin is the batch size from which decoding is spread over goroutines.
const parallelDecodeMin = 512

// decodeBatch decodes the events of msgs above applied, each with the sequence of its message.
func decodeBatch(msgs []events.Message, applied uint64, dst []decodedEvent) ([]decodedEvent, uint64, error) {
	dst = dst[:0]
	last := applied
	for _, m := range msgs {
		if m.Seq <= last {
			continue // redelivered: applied already
		}
		for _, e := range m.Events {
			e.Seq = m.Seq // the state's sequence must not depend on who filled the envelope in
			dst = append(dst, decodedEvent{e: e, from: offerKey{m.Subject, m.Expected}})
		}
		last = m.Seq
	}
	workers := min(runtime.GOMAXPROCS(0), len(dst)/parallelDecodeMin+1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(dst)/workers, (w+1)*len(dst)/workers
		run := func() {
			for i := lo; i < hi; i++ {
				d, err := events.Decode(dst[i].e)
				if err != nil {
					errs[w] = fmt.Errorf("projections: event %s at seq %d: %w", dst[i].e.ID, dst[i].e.Seq, err)
					return
				}
				dst[i].d = d
			}
		}
		if w == workers-1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return dst, last, nil
}
