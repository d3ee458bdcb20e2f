package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// twoTenants writes a random history of acme with another tenant's commands between, in
// rounds of n commands; more acme commands go through the history it returns.
func twoTenants(s *stack, seed uint64, rounds, n int) *randomHistory {
	h := newRandomHistory(s.d, seed)
	s.d.tenant("beta", "probuild")
	for i := range rounds {
		h.run(n)
		s.d.staff("beta", fmt.Sprintf("b%d", i), "full", "worker")
	}
	return h
}

// waitLogged waits until the event log holds every message up to seq.
func waitLogged(t *testing.T, s *stack, seq uint64) {
	t.Helper()
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if got := s.svc.elog.Applied(); got < seq {
			return fmt.Errorf("event log at %d, want %d", got, seq)
		}
		return nil
	})
}

// streamOf reads the whole stream through an ordered consumer, as the followers do.
func streamOf(t *testing.T, s *stack) []events.Message {
	t.Helper()
	var out []events.Message
	err := s.env.Store.Read(context.Background(), 1, 0, func(msgs []events.Message) error {
		out = append(out, msgs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireLogged fails unless the log's messages of tenant in from..to are exactly the stream's
// (all of them, in order, decoded alike; times as instants).
func requireLogged(t *testing.T, l *eventLog, stream []events.Message, tenant string, from, to uint64) {
	t.Helper()
	got, err := l.read(tenant, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var want []events.Message
	for _, m := range stream {
		if m.Seq >= from && m.Seq <= to && logTenant(m.Subject) == tenant {
			want = append(want, m)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s %d..%d: the log holds %d messages, the stream %d", tenant, from, to, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Fatalf("%s: message %d at %v in the log, %v in the stream", tenant, w.Seq, g.Time, w.Time)
		}
		// Field by field: a followed message also keeps the bytes it was read from.
		if g.Seq != w.Seq || g.Subject != w.Subject || !reflect.DeepEqual(g.Events, w.Events) {
			t.Fatalf("%s: message %d differs:\nlog    %+v\nstream %+v", tenant, w.Seq, g, w)
		}
	}
}

// TestEventLogCopiesStream: the log follows the live model and holds each tenant's messages
// exactly as the stream gives them, whole or in any range.
func TestEventLogCopiesStream(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7})
	h := twoTenants(s, 41, 6, 25)
	s.sync(t)
	waitLogged(t, s, s.d.seq)
	stream := streamOf(t, s)
	if uint64(len(stream)) != s.d.seq {
		t.Fatalf("the stream gave %d messages, %d written", len(stream), s.d.seq)
	}
	for _, tenant := range []string{"acme", "beta", "gamma"} {
		requireLogged(t, s.svc.elog, stream, tenant, 1, s.d.seq)
	}
	rnd := rand.New(rand.NewPCG(4, 1))
	for range 20 {
		from := 1 + rnd.Uint64N(s.d.seq)
		to := from + rnd.Uint64N(s.d.seq-from+1)
		requireLogged(t, s.svc.elog, stream, "acme", from, to)
		requireLogged(t, s.svc.elog, stream, "beta", from, to)
	}
	// More commands: the log follows.
	h.run(10)
	s.sync(t)
	waitLogged(t, s, s.d.seq)
	requireLogged(t, s.svc.elog, streamOf(t, s), "acme", 1, s.d.seq)
}

// TestEventLogCrashResumes: the log has no WAL; a crash loses the batches after its last flush
// together with their applied sequence, so what it holds is exactly the messages up to its
// applied sequence, and copying again from there completes it.
func TestEventLogCrashResumes(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7})
	twoTenants(s, 43, 4, 25)
	s.sync(t)
	dir := filepath.Join(t.TempDir(), "events")
	l, err := openEventLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := streamOf(t, s)
	mid := s.d.seq / 2
	if err := l.apply(stream[:mid]); err != nil {
		t.Fatal(err)
	}
	if err := l.pb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.apply(stream); err != nil { // those up to mid are skipped
		t.Fatal(err)
	}
	if err := l.pb.Close(); err != nil { // a crash: the memtable is not written out
		t.Fatal(err)
	}
	if l, err = openEventLog(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Applied(); got != mid {
		t.Fatalf("after the crash the log says it holds up to %d, want %d (its last flush)", got, mid)
	}
	requireLogged(t, l, stream, "acme", 1, mid)
	if rest, err := l.read("acme", mid+1, s.d.seq); err != nil || len(rest) > 0 {
		t.Fatalf("after the crash the log holds %d messages after its applied sequence %d (%v)", len(rest), mid, err)
	}
	if err := l.apply(stream[mid-5:]); err != nil { // as a follower from a little before
		t.Fatal(err)
	}
	requireLogged(t, l, stream, "acme", 1, s.d.seq)
	requireLogged(t, l, stream, "beta", 1, s.d.seq)
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
}

// TestAsOfFromEventLog: once the log has caught up, as_of states read their events from it, not
// from the stream, and every answer, at random moments, at checkpoints and next to them, equals
// the pure evaluator's.
func TestAsOfFromEventLog(t *testing.T) {
	const every = 7
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 2})
	twoTenants(s, 44, 8, 30)
	s.sync(t)
	waitCheckpoint(t, s, s.d.seq/every*every)
	waitLogged(t, s, s.d.seq)
	waitShared(t, s)
	moments := []uint64{1, 2, s.d.seq}
	for _, c := range s.svc.ckpts.list()[:4] {
		moments = append(moments, c, c+1, c-1)
	}
	rnd := rand.New(rand.NewPCG(7, 9))
	for range 30 {
		moments = append(moments, 1+rnd.Uint64N(s.d.seq))
	}
	for _, seq := range moments {
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
	}
	if log, stream := s.svc.builtFrom.log.Load(), s.svc.builtFrom.stream.Load(); log < uint64(len(moments))/2 || stream != 0 {
		t.Errorf("%d states built from the event log, %d from the stream; want all of %d from the log", log, stream, len(moments))
	}
}

// TestAsOfPastEventLog: a moment the log has not reached yet reads the stream; those before it
// the log; both answer as the pure evaluator.
func TestAsOfPastEventLog(t *testing.T) {
	logFollows = false // the test fills the log
	t.Cleanup(func() { logFollows = true })
	const every = 7
	s := startStack(t, Options{CheckpointEvery: every, CachedStates: 1})
	twoTenants(s, 45, 6, 30)
	s.sync(t)
	mid := s.d.seq / 2
	if err := s.svc.elog.apply(streamOf(t, s)[:mid]); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, s, s.d.seq/every*every)
	rnd := rand.New(rand.NewPCG(3, 3))
	var before, after int
	for range 30 {
		seq := 1 + rnd.Uint64N(s.d.seq)
		requireOracleAt(t, s, Moment{Seq: seq}, seq)
		if seq <= mid {
			before++
		} else {
			after++
		}
	}
	log, stream := s.svc.builtFrom.log.Load(), s.svc.builtFrom.stream.Load()
	if before == 0 || after == 0 || log == 0 || stream == 0 || log > uint64(before) || stream > uint64(after) {
		t.Errorf("moments before the log's end %d, after %d; states from the log %d, from the stream %d", before, after, log, stream)
	}
}

// TestEventLogAppendOnly: each flush of the log writes a table after all the others, so no
// compaction has a table of the log to rewrite (tenant first, every flush overlapped them all).
func TestEventLogAppendOnly(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7})
	twoTenants(s, 46, 4, 25)
	s.sync(t)
	l, err := openEventLog(filepath.Join(t.TempDir(), "events"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	stream := streamOf(t, s)
	const chunk = 20
	for i := 0; i < len(stream); i += chunk {
		if err := l.apply(stream[i:min(i+chunk, len(stream))]); err != nil {
			t.Fatal(err)
		}
		if err := l.pb.Flush(); err != nil {
			t.Fatal(err)
		}
		tables, err := l.pb.SSTables()
		if err != nil {
			t.Fatal(err)
		}
		var all []pebble.SSTableInfo
		for _, level := range tables {
			all = append(all, level...)
		}
		for a := range all {
			for b := range a {
				x, y := all[a], all[b]
				if bytes.Compare(x.Smallest.UserKey, y.Largest.UserKey) <= 0 && bytes.Compare(y.Smallest.UserKey, x.Largest.UserKey) <= 0 {
					t.Fatalf("after %d messages, tables %q..%q and %q..%q overlap", min(i+chunk, len(stream)),
						x.Smallest.UserKey, x.Largest.UserKey, y.Smallest.UserKey, y.Largest.UserKey)
				}
			}
		}
	}
	requireLogged(t, l, stream, "acme", 1, s.d.seq)
}

// TestEventLogReadsTenantFirstLayout: a log the tenant-first layout wrote keeps its messages
// there; the stream-order layout takes over after them, and reads across the split, after a
// restart too, give exactly the stream's messages.
func TestEventLogReadsTenantFirstLayout(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7})
	twoTenants(s, 47, 4, 25)
	s.sync(t)
	stream := streamOf(t, s)
	mid := uint64(len(stream)) / 2
	dir := filepath.Join(t.TempDir(), "events")
	writeTenantFirst(t, dir, stream[:mid])
	l, err := openEventLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Applied() != mid || l.split != mid+1 {
		t.Fatalf("opened at applied %d, split %d; want %d, %d", l.Applied(), l.split, mid, mid+1)
	}
	if err := l.apply(stream); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for _, r := range [][2]uint64{{1, s.d.seq}, {1, mid}, {mid, mid + 1}, {mid + 1, s.d.seq}, {mid / 2, mid + mid/2}} {
			requireLogged(t, l, stream, "acme", r[0], r[1])
			requireLogged(t, l, stream, "beta", r[0], r[1])
		}
		if err := l.close(); err != nil {
			t.Fatal(err)
		}
		if l, err = openEventLog(dir, nil); err != nil {
			t.Fatal(err)
		}
		if l.Applied() != s.d.seq || l.split != mid+1 {
			t.Fatalf("reopened at applied %d, split %d; want %d, %d", l.Applied(), l.split, s.d.seq, mid+1)
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
}

// writeTenantFirst writes msgs into the log in dir as the tenant-first layout did: tenant-first
// keys, and the applied sequence (the last message's) under logAppliedKey.
func writeTenantFirst(t *testing.T, dir string, msgs []events.Message) {
	t.Helper()
	pb, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	b := pb.NewBatch()
	for _, m := range msgs {
		raw, err := m.Raw()
		if err != nil {
			t.Fatal(err)
		}
		v := binary.AppendUvarint(nil, uint64(len(m.Subject)))
		v = append(v, m.Subject...)
		v = binary.BigEndian.AppendUint64(v, uint64(m.Time.UnixNano()))
		b.Set(eventLogKey(nil, logTenant(m.Subject), m.Seq), append(v, raw.Data...), nil)
	}
	b.Set(logAppliedKey, binary.BigEndian.AppendUint64(nil, msgs[len(msgs)-1].Seq), nil)
	if err := errors.Join(b.Commit(pebble.Sync), pb.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestEventLogAfterADowngrade: a log of the stream-order layout, then an acld of the
// tenant-first layout on it (a downgrade: it knows nothing of the split and writes the
// messages after its own applied sequence with tenant-first keys), then this layout again.
// Every message must be read, whether the older acld wrote further than the newer one had or not.
func TestEventLogAfterADowngrade(t *testing.T) {
	s := startStack(t, Options{CheckpointEvery: 7})
	twoTenants(s, 47, 4, 25)
	s.sync(t)
	stream := streamOf(t, s)
	n := len(stream)
	for _, tc := range []struct {
		name         string
		newer, older int // messages the newer layout, then the older, had written
	}{
		{"older wrote further", n / 3, 2 * n / 3},
		{"newer wrote further", 2 * n / 3, n / 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "events")
			l, err := openEventLog(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(l.apply(stream[:tc.newer]), l.close()); err != nil {
				t.Fatal(err)
			}
			// The older acld: its applied sequence was never written (the log began with the
			// newer layout), so it writes from the first message on.
			writeTenantFirst(t, dir, stream[:tc.older])
			if l, err = openEventLog(dir, nil); err != nil {
				t.Fatal(err)
			}
			defer l.close()
			want := stream[max(tc.newer, tc.older)-1].Seq
			if l.Applied() != want {
				t.Fatalf("reopened at applied %d, want %d", l.Applied(), want)
			}
			if err := l.apply(stream); err != nil {
				t.Fatal(err)
			}
			for _, r := range [][2]uint64{{1, s.d.seq}, {1, uint64(n / 2)}, {uint64(n / 4), uint64(3 * n / 4)}} {
				requireLogged(t, l, stream, "acme", r[0], r[1])
				requireLogged(t, l, stream, "beta", r[0], r[1])
			}
		})
	}
}
