package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// fanFollower follows through a fanout into a collector until ctx ends.
type fanFollower struct {
	from uint64
	mu   sync.Mutex
	c    collector
	err  error
	done chan struct{}
	// slow, when set, runs before each slice is taken (a follower that lags).
	slow func()
}

func (ff *fanFollower) start(ctx context.Context, f *events.Fanout) {
	ff.done = make(chan struct{})
	go func() {
		defer close(ff.done)
		err := f.Follow(ctx, ff.from, func(msgs []events.Message) error {
			if ff.slow != nil {
				ff.slow()
			}
			ff.mu.Lock()
			defer ff.mu.Unlock()
			return ff.c.add(msgs)
		})
		ff.mu.Lock()
		ff.err = err
		ff.mu.Unlock()
	}()
}

// upTo waits until the follower has every message up to last, then checks that it got each
// from its start on exactly once, in order, with the ids written.
func (ff *fanFollower) upTo(t *testing.T, last uint64, ids []string) {
	t.Helper()
	eventstest.WaitFor(t, 20*time.Second, func() error {
		ff.mu.Lock()
		defer ff.mu.Unlock()
		if ff.err != nil {
			return fmt.Errorf("follow from %d ended with %d messages up to %v: %w", ff.from, len(ff.c.seqs), ff.c.seqs[max(0, len(ff.c.seqs)-1):], ff.err)
		}
		if n := len(ff.c.seqs); n == 0 || ff.c.seqs[n-1] < last {
			return fmt.Errorf("follower from %d has %d messages; want up to %d", ff.from, n, last)
		}
		return nil
	})
	ff.mu.Lock()
	defer ff.mu.Unlock()
	if ff.err != nil {
		t.Fatalf("follow from %d: %v", ff.from, ff.err)
	}
	if want := int(last - ff.from + 1); len(ff.c.seqs) != want || ff.c.seqs[0] != ff.from {
		t.Fatalf("follower from %d got %d messages from %v; want %d", ff.from, len(ff.c.seqs), ff.c.seqs[:1], want)
	}
	for i, seq := range ff.c.seqs { // contiguous: collector.add checked it
		if ff.c.ids[i] != ids[seq] {
			t.Fatalf("follower from %d: message %d has id %s; want %s", ff.from, seq, ff.c.ids[i], ids[seq])
		}
	}
}

// consumers is how many consumers the stream has.
func consumers(t *testing.T, env *eventstest.Env) int {
	t.Helper()
	info, err := env.Store.StreamInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// TestFanoutFollowersExact: followers starting behind the end, far behind it, at it and past
// it, some while messages are appended, each get every message from their start exactly once,
// and once caught up they share one consumer.
func TestFanoutFollowersExact(t *testing.T) {
	events.SetFanQueueMax(t, 64)
	env := eventstest.Start(t)
	st := env.Store
	ids := appendN(t, st, 300)
	f := events.NewFanout(st)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()

	fs := []*fanFollower{{from: 290}, {from: 1}, {from: 150}, {from: 301}, {from: 305}}
	for _, ff := range fs[:3] {
		ff.start(ctx, f)
	}
	more := make(chan []string, 1)
	go func() { more <- appendN2(t, st, 301, 100) }()
	for _, ff := range fs[3:] {
		ff.start(ctx, f)
	}
	all := append(ids, (<-more)[301:]...)
	for _, ff := range fs {
		ff.upTo(t, 400, all)
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if n := consumers(t, env); n != 1 {
			return fmt.Errorf("%d consumers; want the shared one", n)
		}
		return nil
	})
	cancel()
	for _, ff := range fs {
		<-ff.done
		if !errors.Is(ff.err, context.Canceled) {
			t.Errorf("follow from %d after cancel = %v; want context.Canceled", ff.from, ff.err)
		}
	}
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if n := consumers(t, env); n != 0 {
			return fmt.Errorf("%d consumers after every follower stopped", n)
		}
		return nil
	})
}

// TestFanoutSlowFollowerCatchesUp: a follower that falls behind the shared consumer is dropped
// from it, reads alone and joins again, and still gets every message exactly once, while the
// others keep their pace.
func TestFanoutSlowFollowerCatchesUp(t *testing.T) {
	events.SetFanQueueMax(t, 16)
	env := eventstest.Start(t)
	st := env.Store
	ids := appendN(t, st, 10)
	f := events.NewFanout(st)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()

	release := make(chan struct{})
	fast := &fanFollower{from: 1}
	fast.start(ctx, f)
	fast.upTo(t, 10, ids)
	slow := &fanFollower{from: 11, slow: func() { <-release }}
	slow.start(ctx, f) // joins the tail where it is
	ids = append(ids, appendN2(t, st, 11, 200)[11:]...)
	fast.upTo(t, 210, ids)
	if _, drops := f.Stats(); drops == 0 {
		t.Fatal("the blocked follower was not dropped from the shared consumer")
	}
	close(release) // from now on it keeps up
	ids = append(ids, appendFresh(t, st, "more", 211, 50)[211:]...)
	slow.upTo(t, 260, ids)
	fast.upTo(t, 260, ids)
}

// TestFanoutFollowerErrorResumes: a follower whose fn fails gets its error back and the others
// go on; following again from its position resumes exactly.
func TestFanoutFollowerErrorResumes(t *testing.T) {
	env := eventstest.Start(t)
	st := env.Store
	ids := appendN(t, st, 20)
	f := events.NewFanout(st)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	other := &fanFollower{from: 1}
	other.start(ctx, f)
	other.upTo(t, 20, ids)

	stop := errors.New("crash")
	var c collector
	err := f.Follow(ctx, 1, func(msgs []events.Message) error {
		for i, m := range msgs {
			if m.Seq == 12 { // take those before it, as a follower committing up to 11
				if err := c.add(msgs[:i]); err != nil {
					return err
				}
				return stop
			}
		}
		return c.add(msgs)
	})
	if !errors.Is(err, stop) {
		t.Fatalf("follow = %v; want fn's error", err)
	}
	ids = append(ids, appendN2(t, st, 21, 10)[21:]...)
	if last := c.seqs[len(c.seqs)-1]; last != 11 {
		t.Fatalf("committed up to %d; want 11", last)
	}
	other.upTo(t, 30, ids)
	r := &fanFollower{from: 12} // from its last committed position
	r.start(ctx, f)
	r.upTo(t, 30, ids)
	if got := append(c.seqs, r.c.seqs...); len(got) != 30 || got[0] != 1 || got[29] != 30 {
		t.Fatalf("before and after the error: %v; want 1..30", got)
	}
}

// BenchmarkFollowers: three live followers (as acld's projector, audit index and spill) while
// 16 appenders write, each follower through a consumer of its own (store) or all through one
// fanout. cpu-µs/msg is the process's CPU (the embedded server's included) per message
// appended and delivered to all three.
func BenchmarkFollowers(b *testing.B) {
	for _, mode := range []string{"store", "fanout"} {
		b.Run(mode, func(b *testing.B) {
			env := eventstest.Start(b)
			var follow events.Follower = env.Store
			if mode == "fanout" {
				follow = events.NewFanout(env.Store)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got [3]atomic.Uint64
			for i := range got {
				go func() {
					_ = follow.Follow(ctx, 1, func(msgs []events.Message) error {
						got[i].Store(msgs[len(msgs)-1].Seq)
						return nil
					})
				}()
			}
			const appenders = 16
			as := make([]*appender, appenders)
			for i := range as {
				as[i] = newAppender(b, env.Store, fmt.Sprintf("a%d", i), 100)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0 := cpuTime()
			for _, a := range as {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if err := a.append(ctx, int(i)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for i := range got {
				for got[i].Load() < uint64(b.N) {
					time.Sleep(time.Millisecond)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
