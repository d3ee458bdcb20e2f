package commands

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// TestResendAfterDuplicateWindow: once the stream's duplicate window has passed (nats-server
// no longer knows the message ids), a command is still applied once. The stream's window is
// nats-server's shortest, 100 ms, and the test waits past it. Sending a stored message again
// (an append whose answer was lost) is recognised by the store: the expected sequence no longer
// holds and the first message after it carries the id; an atomic batch is refused as a
// conflict. Sending the command again, to the instance that wrote it or to a fresh one, answers
// the first answer from the command ids the aggregates remember. Nothing is written twice.
func TestResendAfterDuplicateWindow(t *testing.T) {
	const window = 100 * time.Millisecond
	e := startEnvStore(t, 1, Options{}, false, events.StoreConfig{DuplicateWindow: window})
	if info, err := e.Store.StreamInfo(e.ctx); err != nil || info.Config.Duplicates != window {
		t.Fatalf("stream info %+v, %v; want a window of %v", info, err, window)
	}
	e.reconpro()
	cases := []struct {
		name string
		cmd  func(id string) aggregates.Command
		subj []string // the subjects the command writes, in the order of its batch
	}{
		{"one aggregate", func(id string) aggregates.Command {
			return &aggregates.RegisterRecord{CommandBase: aggregates.CommandBase{CommandID: id},
				RecordBody: events.RecordBody{Type: "invoice", ID: "inv-w", Units: []events.UnitRef{team("t1")}}}
		}, []string{"acl.events.acme.record.invoice.inv-w"}},
		{"batch of two aggregates", func(id string) aggregates.Command {
			return &aggregates.SetAccessLevel{CommandBase: aggregates.CommandBase{CommandID: id}, Principal: "erin", Level: aggregates.LevelLimited}
		}, []string{"acl.events.acme.tenant.acme", "acl.events.acme.principal.erin"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := uuid.NewString()
			before := e.lastSeq()
			first := e.must("admin", c.cmd(id))
			if first.Seq != e.lastSeq() {
				t.Fatalf("first answer %+v, last seq %d", first, e.lastSeq())
			}
			time.Sleep(3 * window) // nats-server purges the ids on a timer: past the window, not at it
			// The messages as stored, sent again with the ids and expectations they had.
			var items []events.BatchItem
			for _, subj := range c.subj {
				msgs, err := e.Store.LoadRange(e.ctx, subj, before+1, first.Seq)
				if err != nil || len(msgs) != 1 {
					t.Fatalf("load %s: %d messages, %v", subj, len(msgs), err)
				}
				prev, err := e.Store.LoadRange(e.ctx, subj, 1, msgs[0].Seq-1)
				if err != nil {
					t.Fatal(err)
				}
				var expected uint64
				if len(prev) > 0 {
					expected = prev[len(prev)-1].Seq
				}
				msgID := id
				if len(c.subj) > 1 {
					msgID = id + "/" + aggregateKey(msgs[0].Events[0].Aggregate)
				}
				items = append(items, events.BatchItem{Subject: subj, Expected: expected, MsgID: msgID, Events: msgs[0].Events})
			}
			got, err := e.Store.AppendAtomic(e.ctx, items)
			switch {
			case len(items) == 1 && (err != nil || got.Seq != first.Seq || !got.Duplicate):
				t.Fatalf("append again = %+v, %v; want a duplicate of %d", got, err, first.Seq)
			case len(items) > 1 && !errors.Is(err, events.ErrConflict):
				t.Fatalf("batch again = %+v, %v; want a conflict", got, err)
			}
			again := e.must("admin", c.cmd(id))
			fresh := e.addService(t, Options{}) // no cache: the ids come from the stored states
			cmd := c.cmd(id)
			cmd.Base().Actor, cmd.Base().Tenant = "admin", "acme"
			third, err := fresh.Execute(e.ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []Result{again, third} {
				if !reflect.DeepEqual(r, first) {
					t.Fatalf("sent again: %+v, first answer %+v", r, first)
				}
			}
			if n := e.lastSeq(); n != first.Seq {
				t.Fatalf("last seq %d after sending again; first answer %d", n, first.Seq)
			}
		})
	}
}
