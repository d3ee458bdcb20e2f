package commands

// A batch's appends leave the goroutine that decides them (round 11): encoding and publishing
// them, then taking the store's answers (each aggregate's new state published to the cache and
// written to the spill), were 25 % and 26 % of that goroutine's work, and it alone bounded a
// held import (round 10's trace: ~34 µs a command on one core). A flow does both on two
// goroutines of its own, in the order the appends were decided, while the deciding goes on.
// What a command waits for is unchanged: before it reads or writes an aggregate, the answer of
// the batch's earlier append to it (settle waits for the flight's ready, closed once its new
// state is in the cache or it was carried out again alone).

// flow publishes a batch's appends and takes their answers.
type flow struct {
	r *batchRun
	// slots bounds the appends decided and not yet answered (batchWindow): below JetStream's
	// 4000 unanswered asynchronous publishes, and the memory of a batch's flights as before.
	slots chan struct{}
	out   chan *flight // decided, to publish
	sent  chan *flight // published (or refused by the connection), to answer
	done  chan struct{}
}

// startFlow starts the batch's flow.
func (r *batchRun) startFlow() *flow {
	f := &flow{r: r, slots: make(chan struct{}, batchWindow), out: make(chan *flight, batchWindow),
		sent: make(chan *flight, batchWindow), done: make(chan struct{})}
	go f.publish()
	go f.answer()
	return f
}

// put hands a decided append to the flow, waiting while batchWindow of them are unanswered.
func (f *flow) put(fl *flight) {
	f.slots <- struct{}{}
	f.out <- fl
}

// close waits until every append put is answered, and ends the flow.
func (f *flow) close() {
	close(f.out)
	<-f.done
}

// publish sends the appends, in the order decided (one connection's publishes are stored in
// the order sent).
func (f *flow) publish() {
	defer close(f.sent)
	s := f.r.s
	for fl := range f.out {
		s.noteOwn(fl.item.MsgID)
		// An error leaves fl.p nil: not sent (or not known to be); answer carries it out alone.
		fl.p, _ = s.store.AppendAsync(fl.item.Subject, fl.item.Expected, fl.item.MsgID, fl.item.Events)
		close(fl.sent)
		f.sent <- fl
	}
}

// answer takes the answers in the order sent, but for those a command took first (await).
func (f *flow) answer() {
	defer close(f.done)
	for fl := range f.sent {
		if fl.taken.CompareAndSwap(false, true) {
			f.r.take(fl)
		} else {
			<-fl.ready // a command's await is taking it
		}
		<-f.slots
	}
}
