package projections

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkFeedNobodyListens: what the projector and the change feed cost a live message that
// nobody listens to, over an embedded server asked as acld asks it (events.ChangesListeners):
// messages of a random history of one tenant applied as the store hands them over, run
// messages at a time, and the feed caught up at the end. cpu-µs/msg is the process's CPU
// (projector, feed, nats-server) over the messages applied.
func BenchmarkFeedNobodyListens(b *testing.B) {
	for _, run := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("run=%d", run), func(b *testing.B) {
			lf := startListenedFeed(b)
			msgs := lf.next(b.N * run / 2) // a step emits ~1.3 messages
			for len(msgs) < b.N*run {
				msgs = append(msgs, lf.next(b.N*run/4+1)...)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if err := lf.p.ApplyMessages(msgs[i*run : (i+1)*run]); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := lf.feed.WaitFor(ctx, msgs[b.N*run-1].Seq); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*run), "cpu-µs/msg")
			if n := lf.feed.Changes(); n != 0 {
				b.Fatalf("%d changes published, nobody listens", n)
			}
		})
	}
}
