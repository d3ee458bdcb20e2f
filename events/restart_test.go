package events_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

// TestRestartKeepsAcknowledged: every acknowledged message is there after a restart on the same
// directory, with the same sequence and events, and de-duplication and expected sequences
// carry on from where they were.
func TestRestartKeepsAcknowledged(t *testing.T) {
	for _, sync := range []string{"", "always", "2m"} {
		t.Run("sync="+sync, func(t *testing.T) {
			env := eventstest.StartWith(t, events.ServerConfig{Sync: sync}, events.StoreConfig{})
			ids := appendN(t, env.Store, 200)
			batch := seatItems(t, "b1", 0, 0)
			// p-subjects were written by appendN; the batch goes to the tenant and bob.
			a, err := env.Store.AppendAtomic(ctxT(t), batch)
			if err != nil || a.Seq != 202 {
				t.Fatalf("batch = %+v, %v; want seq 202", a, err)
			}
			before := readAll(t, env.Store)

			env.Restart(t)

			after := readAll(t, env.Store)
			if len(after) != len(before) || len(after) != 202 {
				t.Fatalf("%d messages after restart; %d before, want 202", len(after), len(before))
			}
			for i := range before {
				b, a := before[i], after[i]
				if a.Seq != b.Seq || a.Subject != b.Subject || !a.Time.Equal(b.Time) || fmt.Sprint(a.Events) != fmt.Sprint(b.Events) {
					t.Fatalf("message %d after restart %+v; before %+v", i, a, b)
				}
				if a.Seq <= 200 && a.Events[0].ID != ids[a.Seq] {
					t.Fatalf("seq %d holds %s; was acknowledged as %s", a.Seq, a.Events[0].ID, ids[a.Seq])
				}
			}
			// A retry of the last batch is still recognised, and appends go on after 202.
			if d, err := env.Store.AppendAtomic(ctxT(t), batch); err != nil || d != (events.Appended{Seq: 202, Duplicate: true}) {
				t.Fatalf("batch retry after restart = %+v, %v; want 202, duplicate", d, err)
			}
			e := principalEnv(t, "acme", "bob", "c-after", events.RoleAssignedV1{Role: "r"})
			if a, err := env.Store.Append(ctxT(t), subject(t, "acme", "bob"), 202, "c-after", []events.Envelope{e}); err != nil || a.Seq != 203 {
				t.Fatalf("append after restart = %+v, %v; want 203", a, err)
			}
		})
	}
}

// readAll reads the whole stream.
func readAll(t testing.TB, st *events.Store) []events.Message {
	t.Helper()
	var out []events.Message
	// TestStreamCompressesFullBlocks reads 24,000 messages: under -race 7-13 s at load 15-17,
	// past ctxT's 20 s in a CI run at load 12-27; the claim is what it reads, not how fast.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := st.Read(ctx, 1, 0, func(msgs []events.Message) error {
		out = append(out, msgs...)
		return nil
	}); err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

// TestStreamCompressesFullBlocks: a new stream compresses each message block (S2) once full,
// and every acknowledged message reads back the same from it, before and after a restart (the
// server then loads the compressed block from disk). It fails for a stream created without
// compression: its full block stays at 8 MB on disk.
func TestStreamCompressesFullBlocks(t *testing.T) {
	env := eventstest.Start(t)
	info, err := env.Store.StreamInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Compression != jetstream.S2Compression {
		t.Fatalf("compression %v, want s2", info.Config.Compression)
	}
	// Some 10 MB: one full 8 MB block and part of a second.
	const n, window = 24_000, 1000
	pending := make([]*events.Pending, 0, n)
	wait := func(from int) {
		for i, p := range pending[from:] {
			if a, err := p.Wait(ctxT(t)); err != nil || a.Seq != uint64(from+i+1) {
				t.Fatalf("append %d = %+v, %v", from+i, a, err)
			}
		}
	}
	for i := range n {
		if i%window == 0 && i > 0 {
			wait(i - window)
		}
		p := fmt.Sprintf("p%06d", i)
		e := principalEnv(t, "acme", p, "c"+p, events.RoleAssignedV1{Role: "r"})
		a, err := env.Store.AppendAsync(subject(t, "acme", p), 0, e.CommandID, []events.Envelope{e})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, a)
	}
	wait(n - window)
	before := readAll(t, env.Store)
	first := filepath.Join(env.Dir, "jetstream", "ACL", "streams", events.DefaultStream, "msgs", "1.blk")
	if _, err := os.Stat(strings.Replace(first, "1.blk", "2.blk", 1)); err != nil {
		t.Fatalf("the first block is not full: %v", err)
	}
	// The server compresses a full block in the background.
	eventstest.WaitFor(t, 30*time.Second, func() error {
		if fi, err := os.Stat(first); err != nil || fi.Size() > 4<<20 {
			return fmt.Errorf("the full block on disk: %v, %v", fi.Size(), err)
		}
		return nil
	})
	env.Restart(t)
	after := readAll(t, env.Store)
	if len(after) != n || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("%d messages after the restart, want the %d before", len(after), n)
	}
}

// TestStreamCompressionAtCreation: StoreConfig.Uncompressed creates the stream without
// compression, the default with S2, and a later open with the other setting keeps what the
// stream was created with (compression is decided only at creation).
func TestStreamCompressionAtCreation(t *testing.T) {
	for _, tc := range []struct {
		uncompressed bool
		want         jetstream.StoreCompression
	}{
		{true, jetstream.NoCompression},
		{false, jetstream.S2Compression},
	} {
		env := eventstest.StartWith(t, events.ServerConfig{}, events.StoreConfig{Uncompressed: tc.uncompressed})
		for _, st := range []*events.Store{env.Store, reopen(t, env, !tc.uncompressed)} {
			info, err := st.StreamInfo(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.Compression != tc.want {
				t.Fatalf("created with uncompressed %v: compression %v, want %v", tc.uncompressed, info.Config.Compression, tc.want)
			}
		}
	}
}

// reopen opens env's stream again with the given compression setting.
func reopen(t *testing.T, env *eventstest.Env, uncompressed bool) *events.Store {
	st, err := events.OpenStore(ctxT(t), env.Conn, events.StoreConfig{Uncompressed: uncompressed})
	if err != nil {
		t.Fatalf("open again (uncompressed %v): %v", uncompressed, err)
	}
	return st
}
