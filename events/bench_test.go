package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// syncModes are the durability settings every benchmark runs at: the default and always, or
// the comma-separated list in BENCH_SYNC (such as "2m,100ms,10ms,always").
var syncModes = func() []struct{ name, sync string } {
	modes := []struct{ name, sync string }{{"sync=default", ""}, {"sync=always", "always"}}
	if env := os.Getenv("BENCH_SYNC"); env != "" {
		modes = modes[:0]
		for m := range strings.SplitSeq(env, ",") {
			modes = append(modes, struct{ name, sync string }{"sync=" + m, m})
		}
	}
	return modes
}()

// appender appends to its own principals with the right expected sequence each time.
type appender struct {
	st    *events.Store
	name  string
	last  []uint64
	envs  []events.Envelope
	subjs []string
}

func newAppender(b *testing.B, st *events.Store, name string, principals int) *appender {
	a := &appender{st: st, name: name, last: make([]uint64, principals)}
	for i := range principals {
		id := fmt.Sprintf("%s-%d", name, i)
		a.subjs = append(a.subjs, subject(b, "acme", id))
		a.envs = append(a.envs, principalEnv(b, "acme", id, "c", events.RoleAssignedV1{Role: "technician"}))
	}
	return a
}

func (a *appender) append(ctx context.Context, i int) error {
	p := i % len(a.subjs)
	e := a.envs[p]
	e.CommandID = fmt.Sprintf("%s-%d", a.name, i)
	r, err := a.st.Append(ctx, a.subjs[p], a.last[p], e.CommandID, []events.Envelope{e})
	if err != nil {
		return err
	}
	a.last[p] = r.Seq
	return nil
}

// BenchmarkAppend: one appender, one event per message, with expected sequence and msg id.
func BenchmarkAppend(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			env := eventstest.StartWith(b, events.ServerConfig{Sync: m.sync}, events.StoreConfig{})
			a := newAppender(b, env.Store, "a", 1000)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := a.append(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkAppendParallel: 16 appenders at once, each on its own subjects.
func BenchmarkAppendParallel(b *testing.B) {
	const appenders = 16
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			env := eventstest.StartWith(b, events.ServerConfig{Sync: m.sync}, events.StoreConfig{})
			as := make([]*appender, appenders)
			for i := range as {
				as[i] = newAppender(b, env.Store, fmt.Sprintf("a%d", i), 100)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, appenders)
			b.ResetTimer()
			for _, a := range as {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; next.Add(1) <= int64(b.N); i++ {
						if err := a.append(context.Background(), i); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// replayMessages is the size of the stream BenchmarkReplay reads; REPLAY_MESSAGES overrides it.
func replayMessages() int {
	n := 200_000
	if s := os.Getenv("REPLAY_MESSAGES"); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}

var replayFixture struct {
	once sync.Once
	dir  string
	err  error
}

// replayDir fills a store directory once per process with replayMessages() messages of one
// event each, published asynchronously (the fill is not what is measured).
func replayDir(b *testing.B) string {
	replayFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "events-replay-")
		if err != nil {
			replayFixture.err = err
			return
		}
		replayFixture.dir = dir
		replayFixture.err = fillStore(dir, replayMessages())
	})
	if replayFixture.err != nil {
		b.Fatal(replayFixture.err)
	}
	return replayFixture.dir
}

func fillStore(dir string, n int) error {
	s, err := events.StartServer(events.ServerConfig{Dir: dir})
	if err != nil {
		return err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := events.ConnectInProcess(s)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	if _, err := events.OpenStore(ctx, nc, events.StoreConfig{}); err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2000))
	if err != nil {
		return err
	}
	for i := range n {
		id := fmt.Sprintf("p%d", i%10000)
		e, err := events.New(events.Meta{Tenant: "acme", Aggregate: events.PrincipalRef(id), Actor: "system",
			CommandID: fmt.Sprint(i), Time: time.Now()}, events.RoleAssignedV1{Role: "technician"})
		if err != nil {
			return err
		}
		data, _ := json.Marshal([]events.Envelope{e})
		if _, err := js.PublishAsync("acl.events.acme.principal."+id, data); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("fill: acks not received")
	}
}

// BenchmarkReplay reads the whole stream with Read (the ordered consumer, as Follow does) and
// decodes every envelope.
func BenchmarkReplay(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			dir := replayDir(b)
			env := eventstest.StartWith(b, events.ServerConfig{Dir: dir, Sync: m.sync}, events.StoreConfig{})
			want := uint64(replayMessages())
			cpu := startCPU()
			b.ResetTimer()
			total := 0
			for i := 0; i < b.N; i++ {
				var n uint64
				err := env.Store.Read(context.Background(), 1, 0, func(msgs []events.Message) error {
					for _, msg := range msgs {
						n += uint64(len(msg.Events))
					}
					return nil
				})
				if err != nil || n != want {
					b.Fatalf("read %d events, %v; want %d", n, err, want)
				}
				total += int(n)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
			cpu.report(b, total)
		})
	}
}

// BenchmarkLoad loads one aggregate out of the replay fixture, where each of 10,000
// principals has a message every 10,000 sequences (about two per file block: the server scans
// a block from the requested sequence to the subject's next message). "all" loads its whole
// history (20 messages by default), "tail" only what follows a cached state (the last message).
func BenchmarkLoad(b *testing.B) {
	env := eventstest.StartWith(b, events.ServerConfig{Dir: replayDir(b)}, events.StoreConfig{})
	per := replayMessages() / 10000
	for _, tc := range []struct {
		name string
		skip int // messages of the subject not loaded
	}{{"all", 0}, {"tail", per - 1}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				k := i % 10000
				after := uint64(0)
				if tc.skip > 0 {
					after = uint64(k + 1 + (tc.skip-1)*10000)
				}
				subj := fmt.Sprintf("acl.events.acme.principal.p%d", k)
				msgs, err := env.Store.Load(ctx, subj, after)
				if err != nil || len(msgs) != per-tc.skip {
					b.Fatalf("load %s after %d: %d messages, %v; want %d", subj, after, len(msgs), err, per-tc.skip)
				}
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if replayFixture.dir != "" {
		os.RemoveAll(replayFixture.dir)
	}
	os.Exit(code)
}

// BenchmarkReplayBaseline is what the replay costs without this package: a bare ordered
// consumer that counts messages. BenchmarkReplay over it is this package's overhead; on a
// shared machine, compare the two from one run.
func BenchmarkReplayBaseline(b *testing.B) {
	env := eventstest.StartWith(b, events.ServerConfig{Dir: replayDir(b)}, events.StoreConfig{})
	js, err := jetstream.New(env.Conn)
	if err != nil {
		b.Fatal(err)
	}
	want := replayMessages()
	cpu := startCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cons, err := js.OrderedConsumer(context.Background(), events.DefaultStream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		n := 0
		cc, err := cons.Consume(func(jetstream.Msg) {
			if n++; n == want {
				close(done)
			}
		}, jetstream.PullMaxMessages(2000))
		if err != nil {
			b.Fatal(err)
		}
		<-done
		cc.Stop()
	}
	b.ReportMetric(float64(b.N*want)/b.Elapsed().Seconds(), "events/s")
	cpu.report(b, b.N*want)
}

// cpuClock measures the CPU time of the whole process (server included). On a machine shared
// with other work, CPU time per event varies much less than wall-clock rates do.
type cpuClock time.Duration

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock(processCPU()) }

// report adds the CPU nanoseconds spent per event since start.
func (c cpuClock) report(b *testing.B, events int) {
	if events > 0 {
		b.ReportMetric(float64(processCPU()-time.Duration(c))/float64(events), "cpu-ns/event")
	}
}

// BenchmarkAppendAtomicLarge: atomic batches of 1000 messages, each on a subject of its own
// with its expected sequence, as a bulk import writes them: what one batch costs against the
// ~2.3 ms of a 3-message batch (JETSTREAM.md), per message.
func BenchmarkAppendAtomicLarge(b *testing.B) {
	for _, size := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("messages=%d", size), func(b *testing.B) {
			env := eventstest.StartWith(b, events.ServerConfig{}, events.StoreConfig{})
			ctx := context.Background()
			n := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				items := make([]events.BatchItem, size)
				for k := range items {
					n++
					id := fmt.Sprintf("p-%d", n)
					e := principalEnv(b, "acme", id, fmt.Sprintf("c-%d", n), events.RoleAssignedV1{Role: "technician"})
					items[k] = events.BatchItem{Subject: subject(b, "acme", id), MsgID: e.CommandID, Events: []events.Envelope{e}}
				}
				if _, err := env.Store.AppendAtomic(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
