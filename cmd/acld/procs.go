package main

// procs is the GOMAXPROCS acld runs with: n when set, else twice cpus (Go's default, the CPUs
// acld may use).
//
// Why more than the CPUs: besides the queries and the command path, acld runs background
// work after every write: the change feed works out what each change did to access, the
// audit index, the command state spill and the as_of chain follow the stream, and Pebble
// flushes and compacts. With GOMAXPROCS = CPUs that work holds every P for a millisecond or
// more at a time, right when the answer to a command goes out and its caller asks the
// read-your-writes check; Go then queues the check's goroutines (the HTTP reader, the
// min_seq waiter, nats-server's deliveries to the projector) until a P is free, and it
// preempts a busy goroutine only after 10 ms. A runtime trace of acld at 10^6 records under
// the ryw workload showed those goroutines runnable for 2-20 ms with the change feed and the
// as_of filler on both Ps. With twice the Ps a goroutine that becomes runnable gets a P at
// once and the kernel shares the CPUs between threads at a finer grain, favouring the one
// that just woke; the background work takes no more CPU than before, it is only interleaved
// (README, Round 6 read-your-writes).
func procs(n, cpus int) int {
	if n > 0 {
		return n
	}
	return 2 * max(cpus, 1)
}
