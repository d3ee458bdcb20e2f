package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

func TestAppendAndLoad(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	e1 := principalEnv(t, "acme", "bob", "c1", events.EmailSetV1{Email: "b@acme.test"})
	e2 := principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "technician"})
	other := principalEnv(t, "acme", "dora", "c2", events.RoleAssignedV1{Role: "accountant"})

	a, err := st.Append(ctx, subj, 0, "c1", []events.Envelope{e1, e2})
	if err != nil || a != (events.Appended{Seq: 1}) {
		t.Fatalf("append = %+v, %v; want seq 1", a, err)
	}
	if _, err := st.Append(ctx, subject(t, "acme", "dora"), 0, "c2", []events.Envelope{other}); err != nil {
		t.Fatalf("append other subject: %v", err)
	}
	e3 := principalEnv(t, "acme", "bob", "c3", events.RoleRevokedV1{Role: "technician"})
	if a, err := st.Append(ctx, subj, 1, "c3", []events.Envelope{e3}); err != nil || a.Seq != 3 {
		t.Fatalf("append after 1 = %+v, %v; want seq 3", a, err)
	}

	tests := []struct {
		after uint64
		want  []uint64 // sequences of the messages
		ids   [][]string
	}{
		{0, []uint64{1, 3}, [][]string{{e1.ID, e2.ID}, {e3.ID}}},
		{1, []uint64{3}, [][]string{{e3.ID}}},
		{3, nil, nil},
		{99, nil, nil},
	}
	for _, tc := range tests {
		msgs, err := st.Load(ctx, subj, tc.after)
		if err != nil {
			t.Fatalf("load after %d: %v", tc.after, err)
		}
		if len(msgs) != len(tc.want) {
			t.Fatalf("load after %d: %d messages; want %d", tc.after, len(msgs), len(tc.want))
		}
		for i, m := range msgs {
			if m.Seq != tc.want[i] || m.Subject != subj || m.Time.IsZero() || len(m.Events) != len(tc.ids[i]) {
				t.Fatalf("load after %d: message %d = %+v; want seq %d", tc.after, i, m, tc.want[i])
			}
			for j, e := range m.Events {
				if e.ID != tc.ids[i][j] || e.Seq != m.Seq {
					t.Errorf("load after %d: event %d.%d = %s seq %d; want %s seq %d", tc.after, i, j, e.ID, e.Seq, tc.ids[i][j], m.Seq)
				}
			}
		}
	}
	// The stored data is exactly the envelopes, without seq (SPEC section 6).
	raw := rawMsg(t, env, 1).Data
	var stored []map[string]any
	if err := json.Unmarshal(raw, &stored); err != nil || len(stored) != 2 {
		t.Fatalf("stored data %s: %v; want a JSON array of 2", raw, err)
	}
	if _, ok := stored[0]["seq"]; ok {
		t.Errorf("stored envelope has a seq: %s", raw)
	}
}

func TestAppendConflict(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	ev := func(cmd string) []events.Envelope {
		return []events.Envelope{principalEnv(t, "acme", "bob", cmd, events.RoleAssignedV1{Role: "r"})}
	}
	for i, cmd := range []string{"c1", "c2"} {
		if _, err := st.Append(ctx, subj, uint64(i), cmd, ev(cmd)); err != nil {
			t.Fatalf("append %s: %v", cmd, err)
		}
	}
	// Another subject moves the stream on; the subject's last sequence is still 2.
	if _, err := st.Append(ctx, subject(t, "acme", "dora"), 0, "d1",
		[]events.Envelope{principalEnv(t, "acme", "dora", "d1", events.RoleAssignedV1{Role: "r"})}); err != nil {
		t.Fatalf("append other: %v", err)
	}
	tests := []struct {
		name     string
		expected uint64
	}{
		{"expected 0 on a subject with messages", 0},
		{"stale expected", 1},
		{"future expected", 3},
		{"far future expected", 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Append(ctx, subj, tc.expected, "x-"+tc.name, ev("x"))
			if !errors.Is(err, events.ErrConflict) {
				t.Fatalf("append expecting %d = %v; want ErrConflict", tc.expected, err)
			}
			if n := lastSeq(t, st); n != 3 {
				t.Fatalf("last seq %d after a conflict; want 3", n)
			}
		})
	}
	if a, err := st.Append(ctx, subj, 2, "c4", ev("c4")); err != nil || a.Seq != 4 {
		t.Fatalf("append with the right expected = %+v, %v; want seq 4", a, err)
	}
}

func TestAppendDuplicateMsgID(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	first := []events.Envelope{principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "r"})}
	a, err := st.Append(ctx, subj, 0, "c1", first)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := st.Append(ctx, subject(t, "acme", "dora"), 0, "d1",
		[]events.Envelope{principalEnv(t, "acme", "dora", "d1", events.RoleAssignedV1{Role: "r"})}); err != nil {
		t.Fatalf("append other: %v", err)
	}
	// A retry whose first answer was lost: same id, same expected sequence, new envelope ids.
	retry := []events.Envelope{principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "r"})}
	d, err := st.Append(ctx, subj, 0, "c1", retry)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if d != (events.Appended{Seq: a.Seq, Duplicate: true}) {
		t.Fatalf("retry = %+v; want the original seq %d, duplicate", d, a.Seq)
	}
	if n := lastSeq(t, st); n != 2 {
		t.Fatalf("last seq %d after a duplicate; want 2", n)
	}
	msgs, err := st.Load(ctx, subj, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Events[0].ID != first[0].ID {
		t.Fatalf("load = %+v, %v; want only the first append", msgs, err)
	}
}

func TestAppendInvalidWritesNothing(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	good := func() events.Envelope {
		return principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "r"})
	}
	if _, err := st.Append(ctx, subj, 0, "c0", []events.Envelope{good()}); err != nil {
		t.Fatalf("append: %v", err)
	}
	with := func(f func(*events.Envelope)) []events.Envelope {
		e := good()
		f(&e)
		return []events.Envelope{good(), e}
	}
	tests := []struct {
		name    string
		subject string
		msgID   string
		envs    []events.Envelope
	}{
		{"unknown type", subj, "m", with(func(e *events.Envelope) { e.Type = "role_assignd" })},
		{"missing id", subj, "m", with(func(e *events.Envelope) { e.ID = "" })},
		{"missing actor", subj, "m", with(func(e *events.Envelope) { e.Actor = "" })},
		{"missing command id", subj, "m", with(func(e *events.Envelope) { e.CommandID = "" })},
		{"missing time", subj, "m", with(func(e *events.Envelope) { e.Time = time.Time{} })},
		{"missing data", subj, "m", with(func(e *events.Envelope) { e.Data = nil })},
		{"data not an object of the type", subj, "m", with(func(e *events.Envelope) { e.Data = []byte(`{"role":7}`) })},
		{"data not JSON", subj, "m", with(func(e *events.Envelope) { e.Data = []byte(`{`) })},
		{"envelope of another aggregate", subj, "m", with(func(e *events.Envelope) { e.Aggregate = events.PrincipalRef("dora") })},
		{"envelope of another tenant", subj, "m", with(func(e *events.Envelope) { e.Tenant = "other" })},
		{"no envelope", subj, "m", nil},
		{"subject token with a dot", "acl.events.acme.principal.bob.x", "m", []events.Envelope{good()}},
		{"subject token with a space", "acl.events.acme.principal.b ob", "m", []events.Envelope{good()}},
		{"subject with an empty token", "acl.events.acme..principal.bob", "m", []events.Envelope{good()}},
		{"subject with a wildcard", "acl.events.acme.principal.*", "m", []events.Envelope{good()}},
		{"subject outside the stream", "acl.other.acme.principal.bob", "m", []events.Envelope{good()}},
		{"aggregate id with a dot", "acl.events.acme.principal.b.ob", "m",
			with(func(e *events.Envelope) { e.Aggregate.ID = "b.ob" })},
		{"aggregate id with a space", "acl.events.acme.principal.b ob", "m",
			with(func(e *events.Envelope) { e.Aggregate.ID = "b ob" })},
		{"message id with a line break", subj, "m\r\nNats-Expected-Last-Subject-Sequence: 9", []events.Envelope{good()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Append(ctx, tc.subject, 1, tc.msgID, tc.envs)
			if !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("append = %v; want ErrInvalid", err)
			}
			if n := lastSeq(t, st); n != 1 {
				t.Fatalf("last seq %d after a refused append; want 1", n)
			}
		})
	}
}

// TestAppendRetryAfterSubjectMovedOn: the server checks the expected sequence before the
// message id, so a retry must be recognised by the store itself, even when the subject has had
// other messages since.
func TestAppendRetryAfterSubjectMovedOn(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	subj := subject(t, "acme", "bob")
	ev := func(cmd string) []events.Envelope {
		return []events.Envelope{principalEnv(t, "acme", "bob", cmd, events.RoleAssignedV1{Role: "r"})}
	}
	for i, cmd := range []string{"c1", "c2", "c3"} {
		if _, err := st.Append(ctx, subj, uint64(i), cmd, ev(cmd)); err != nil {
			t.Fatalf("append %s: %v", cmd, err)
		}
	}
	tests := []struct {
		msgID    string
		expected uint64
		want     events.Appended
		conflict bool
	}{
		{"c1", 0, events.Appended{Seq: 1, Duplicate: true}, false},
		{"c2", 1, events.Appended{Seq: 2, Duplicate: true}, false},
		{"c2", 0, events.Appended{}, true}, // c2 was not the first message after 0
		{"c9", 1, events.Appended{}, true},
		{"", 1, events.Appended{}, true},
	}
	for _, tc := range tests {
		got, err := st.Append(ctx, subj, tc.expected, tc.msgID, ev(tc.msgID+"x"))
		if tc.conflict != errors.Is(err, events.ErrConflict) || got != tc.want {
			t.Errorf("append %q expecting %d = %+v, %v; want %+v (conflict %v)", tc.msgID, tc.expected, got, err, tc.want, tc.conflict)
		}
	}
	if n := lastSeq(t, st); n != 3 {
		t.Fatalf("last seq %d; want 3", n)
	}
}

// TestAppendTooLarge: a message above the NATS payload limit (1 MiB) is refused as invalid.
func TestAppendTooLarge(t *testing.T) {
	env := eventstest.Start(t)
	links := make([]events.RecordRef, 40000)
	for i := range links {
		links[i] = events.RecordRef{Type: "case", ID: fmt.Sprintf("case-%d", i)}
	}
	e, err := events.New(events.Meta{Tenant: "acme", Aggregate: events.RecordAggregate("invoice", "i1"), Actor: "system",
		CommandID: "c1", Time: testTime}, events.RecordRegisteredV1{RecordBody: events.RecordBody{Type: "invoice", ID: "i1", Links: links}})
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := events.Subject("acme", e.Aggregate)
	if _, err := env.Store.Append(ctxT(t), subj, 0, "c1", []events.Envelope{e}); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("append of %d bytes of data = %v; want ErrInvalid", len(e.Data), err)
	}
	if n := lastSeq(t, env.Store); n != 0 {
		t.Fatalf("last seq %d; want 0", n)
	}
}

// TestLoadAfterSendsNoBatch: Load after a sequence asks for one message per direct get. A batched
// request makes nats-server count the subject's messages after its start first (for the
// Nats-Num-Pending header), which from anywhere but the stream's start loads and decompresses
// the message blocks of the subject's whole span: a fifth of acld's CPU right after a start at
// 10^6 records, for a tenant's messages after its snapshot. The answers are Load's as before.
func TestLoadAfterSendsNoBatch(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	spy := env.Connect(t, env.Owner.Option())
	var mu sync.Mutex
	var batches []int
	sub, err := spy.Subscribe("$JS.API.DIRECT.GET.>", func(m *nats.Msg) {
		var req struct {
			Batch int `json:"batch"`
		}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("direct get request %s: %v", m.Data, err)
		}
		mu.Lock()
		batches = append(batches, req.Batch)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes with the test
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	subj, other := subject(t, "acme", "bob"), subject(t, "acme", "dora")
	var seqs []uint64 // bob's
	var last, lastOther uint64
	bob := func(i int) { // bob's i-th message
		e := principalEnv(t, "acme", "bob", fmt.Sprintf("c%d", i), events.RoleAssignedV1{Role: fmt.Sprintf("r%d", i)})
		a, err := st.Append(ctx, subj, last, fmt.Sprintf("c%d", i), []events.Envelope{e})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		last = a.Seq
		seqs = append(seqs, a.Seq)
	}
	for i := range 5 { // bob's messages between dora's
		bob(i)
		o := principalEnv(t, "acme", "dora", fmt.Sprintf("d%d", i), events.RoleAssignedV1{Role: "r"})
		a, err := st.Append(ctx, other, lastOther, fmt.Sprintf("d%d", i), []events.Envelope{o})
		if err != nil {
			t.Fatalf("append other %d: %v", i, err)
		}
		lastOther = a.Seq
	}
	msgs, err := st.Load(ctx, subj, seqs[1])
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, m := range msgs {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, seqs[2:]) {
		t.Fatalf("load after %d: %v, want %v", seqs[1], got, seqs[2:])
	}
	// The spy's handler runs apart from its connection: wait until it has seen n requests
	// (or a deadline), then take what it saw.
	seen := func(n int) []int {
		t.Helper()
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			got := slices.Clone(batches)
			mu.Unlock()
			if len(got) >= n || time.Now().After(deadline) {
				mu.Lock()
				batches = batches[:0]
				mu.Unlock()
				return got
			}
		}
	}
	first := seen(len(seqs) - 2 + 1) // and the get that finds nothing more
	if len(first) == 0 {
		t.Fatal("the spy saw no direct get")
	}
	for _, b := range first {
		if b != 0 {
			t.Errorf("direct gets with batches %v, want one message each", first)
			break
		}
	}

	// A long tail: single gets for the first messages, then batches.
	for i := 5; i < 5+100; i++ {
		bob(i)
	}
	if msgs, err = st.Load(ctx, subj, seqs[1]); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, m := range msgs {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, seqs[2:]) {
		t.Fatalf("long load after %d: %d messages, want %d", seqs[1], len(got), len(seqs)-2)
	}
	long := seen(65)
	singles := slices.IndexFunc(long, func(b int) bool { return b != 0 })
	if singles != 64 || len(long) != singles+1 {
		t.Errorf("a load of %d messages sent %v, want 64 single gets and one batch", len(got), long)
	}
}

// TestAppendGivesDecodedData: AppendAsync's Pending.Data and AppendAtomicData give each
// envelope's data as Decode gives it (what the command path applies to its states instead of
// decoding the events again), a value of its own for each append; nothing for an append
// refused before it was sent.
func TestAppendGivesDecodedData(t *testing.T) {
	env := eventstest.Start(t)
	st, ctx := env.Store, ctxT(t)
	check := func(what string, envs []events.Envelope, got []events.Data) {
		t.Helper()
		if len(got) != len(envs) {
			t.Fatalf("%s: %d data for %d envelopes", what, len(got), len(envs))
		}
		for i, e := range envs {
			want, err := events.Decode(e)
			if err != nil || !reflect.DeepEqual(got[i], want) {
				t.Fatalf("%s: data %d = %#v; Decode gives %#v (%v)", what, i, got[i], want, err)
			}
		}
	}
	body := events.RecordBody{Type: "case", ID: "c1", Assignees: []events.Assignee{{Principal: "bob", Relation: "assignee"}}}
	rec, err := events.New(events.Meta{Tenant: "acme", Aggregate: events.RecordAggregate("case", "c1"), Actor: "system",
		CommandID: "c0", Time: time.Now()}, events.RecordRegisteredV1{RecordBody: body})
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.AppendAsync("acl.events.acme.record.case.c1", 0, "c0", []events.Envelope{rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	check("AppendAsync", []events.Envelope{rec}, p.Data())
	first := p.Data()[0].(events.RecordRegisteredV1)

	e1 := principalEnv(t, "acme", "bob", "c1", events.EmailSetV1{Email: "b@acme.test"})
	e2 := principalEnv(t, "acme", "bob", "c1", events.RoleAssignedV1{Role: "technician"})
	app, data, err := st.AppendAtomicData(ctx, []events.BatchItem{{Subject: subject(t, "acme", "bob"), MsgID: "c1", Events: []events.Envelope{e1, e2}}})
	if err != nil || app.Seq != 2 || len(data) != 1 {
		t.Fatalf("one item: %+v, %d items of data, %v", app, len(data), err)
	}
	check("AppendAtomicData, one item", []events.Envelope{e1, e2}, data[0])

	e3 := principalEnv(t, "acme", "dora", "c3", events.RoleAssignedV1{Role: "accountant"})
	e4 := principalEnv(t, "acme", "eve", "c3", events.RoleAssignedV1{Role: "accountant"})
	app, data, err = st.AppendAtomicData(ctx, []events.BatchItem{
		{Subject: subject(t, "acme", "dora"), MsgID: "c3/d", Events: []events.Envelope{e3}},
		{Subject: subject(t, "acme", "eve"), MsgID: "c3/e", Events: []events.Envelope{e4}}})
	if err != nil || app.Seq != 4 || app.Count != 2 || len(data) != 2 {
		t.Fatalf("two items: %+v, %d items of data, %v", app, len(data), err)
	}
	check("AppendAtomicData, item 1", []events.Envelope{e3}, data[0])
	check("AppendAtomicData, item 2", []events.Envelope{e4}, data[1])

	// Each append decodes for itself: the data given away is not shared with another append.
	p2, err := st.AppendAsync("acl.events.acme.record.case.c1", 1, "c9", []events.Envelope{rec})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	second := p2.Data()[0].(events.RecordRegisteredV1)
	if &first.Assignees[0] == &second.Assignees[0] {
		t.Fatal("two appends gave the same assignees slice")
	}

	bad := e1
	bad.Data = json.RawMessage(`{"email":`)
	if _, data, err := st.AppendAtomicData(ctx, []events.BatchItem{{Subject: subject(t, "acme", "bob"), Expected: 2, MsgID: "c5", Events: []events.Envelope{bad}}}); !errors.Is(err, events.ErrInvalid) || data != nil {
		t.Fatalf("bad data: %v, %v; want ErrInvalid and no data", data, err)
	}
}
