package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/events/eventstest"
)

func TestStreamConfigReadBack(t *testing.T) {
	env := eventstest.Start(t)
	info, err := env.Store.StreamInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if !c.DenyDelete || !c.DenyPurge || !c.AllowDirect || !c.AllowAtomicPublish || c.AllowRollup ||
		c.AllowMsgTTL || c.AllowMsgSchedules || c.SubjectDeleteMarkerTTL != 0 || c.MaxAge != 0 ||
		c.Storage != jetstream.FileStorage || c.Duplicates != events.DefaultDuplicateWindow || c.Replicas != 1 {
		t.Fatalf("stream config %+v", c)
	}
}

// TestHistoryCannotBeErased tries every way a client could remove history from the stream.
// JetStream refuses message deletes and purges (DenyDelete, DenyPurge); deleting the stream or
// raising its limits is refused by the embedded server's permissions.
func TestHistoryCannotBeErased(t *testing.T) {
	env := eventstest.Start(t)
	appendN(t, env.Store, 5)
	violations := make(chan error, 10)
	nc := env.Connect(t, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		violations <- err
	}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctxT(t), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name       string
		do         func() error
		permission bool // refused by permissions (else by the stream's flags)
	}{
		{"delete the stream", func() error { return js.DeleteStream(short(), events.DefaultStream) }, true},
		{"purge the stream", func() error { return stream.Purge(short()) }, true},
		{"purge a subject", func() error { return stream.Purge(short(), jetstream.WithPurgeSubject(subject(t, "acme", "p1"))) }, true},
		{"delete a message", func() error { return stream.DeleteMsg(short(), 2) }, true},
		{"erase a message", func() error { return stream.SecureDeleteMsg(short(), 2) }, true},
		{"set a max age", func() error {
			_, err := js.UpdateStream(short(), jetstream.StreamConfig{Name: events.DefaultStream, Subjects: []string{"acl.events.>"}, MaxAge: time.Second})
			return err
		}, true},
		{"roll up a subject", func() error {
			m := nats.NewMsg(subject(t, "acme", "p1"))
			m.Data = []byte("[]")
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			_, err := js.PublishMsg(short(), m)
			return err
		}, false},
		{"publish with a TTL", func() error {
			_, err := js.Publish(short(), subject(t, "acme", "p9"), []byte("[]"), jetstream.WithMsgTTL(time.Second))
			return err
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil {
				t.Fatal("accepted")
			}
			if tc.permission {
				select {
				case err := <-violations:
					if !errors.Is(err, nats.ErrPermissionViolation) {
						t.Fatalf("async error %v; want a permissions violation", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no permissions violation reported")
				}
			}
			if n := lastSeq(t, env.Store); n != 5 {
				t.Fatalf("last seq %d; want 5", n)
			}
			info, err := env.Store.StreamInfo(ctxT(t))
			if err != nil || info.State.Msgs != 5 || info.Config.MaxAge != 0 {
				t.Fatalf("stream after: %+v, %v; want 5 messages, no max age", info, err)
			}
		})
	}
}

// TestStreamFlagsRefuseErasure: without the server's permissions (an external server), the
// stream's own flags still refuse purges and message deletes, and cannot be turned off.
func TestStreamFlagsRefuseErasure(t *testing.T) {
	env := eventstest.Start(t) // env.Conn is the owner's: no server permission stands in the way
	appendN(t, env.Store, 3)
	js, err := jetstream.New(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctxT(t), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.DenyPurge = false
	tests := []struct {
		name string
		do   func() error
		code jetstream.ErrorCode
	}{
		{"purge", func() error { return stream.Purge(ctxT(t)) }, 10110},
		// nats.go flattens this API error into a string: ask the API directly.
		{"delete a message", func() error {
			return apiCall(t, env.Conn, "$JS.API.STREAM.MSG.DELETE."+events.DefaultStream, `{"seq":1}`)
		}, 10057},
		{"turn deny purge off", func() error { _, err := js.UpdateStream(ctxT(t), cfg); return err }, 10052},
	}
	for _, tc := range tests {
		var apiErr *jetstream.APIError
		if err := tc.do(); !errors.As(err, &apiErr) || apiErr.ErrorCode != tc.code {
			t.Errorf("%s = %v; want API error %d", tc.name, err, tc.code)
		}
	}
	if n := lastSeq(t, env.Store); n != 3 {
		t.Fatalf("last seq %d; want 3", n)
	}
}

// TestOpenStoreRefusesUnsafeStream: a stream named ACL_EVENTS that exists with a configuration
// that could lose history, or that differs from what is configured, is refused.
func TestOpenStoreRefusesUnsafeStream(t *testing.T) {
	safe := func() jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: events.DefaultStream, Subjects: []string{"acl.events.>"}, Storage: jetstream.FileStorage,
			DenyDelete: true, DenyPurge: true, AllowDirect: true, AllowAtomicPublish: true,
			Duplicates: 2 * time.Minute,
		}
	}
	tests := []struct {
		name   string
		change func(*jetstream.StreamConfig)
		open   events.StoreConfig
	}{
		{"deletes allowed", func(c *jetstream.StreamConfig) { c.DenyDelete = false }, events.StoreConfig{}},
		{"purges allowed", func(c *jetstream.StreamConfig) { c.DenyPurge = false }, events.StoreConfig{}},
		{"max age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, events.StoreConfig{}},
		{"max messages", func(c *jetstream.StreamConfig) { c.MaxMsgs = 1000 }, events.StoreConfig{}},
		{"max per subject", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 10 }, events.StoreConfig{}},
		{"message TTLs", func(c *jetstream.StreamConfig) { c.AllowMsgTTL = true }, events.StoreConfig{}},
		{"delete markers", func(c *jetstream.StreamConfig) {
			c.AllowMsgTTL, c.SubjectDeleteMarkerTTL = true, time.Minute
		}, events.StoreConfig{}},
		{"rollups", func(c *jetstream.StreamConfig) { c.AllowRollup, c.DenyPurge = true, false }, events.StoreConfig{}},
		{"memory storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, events.StoreConfig{}},
		{"work queue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, events.StoreConfig{}},
		{"no direct get", func(c *jetstream.StreamConfig) { c.AllowDirect = false }, events.StoreConfig{}},
		{"no atomic batch", func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, events.StoreConfig{}},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"acl.events.acme.>"} }, events.StoreConfig{}},
		{"replicas differ", func(*jetstream.StreamConfig) {}, events.StoreConfig{Replicas: 3}},
		{"window differs", func(*jetstream.StreamConfig) {}, events.StoreConfig{DuplicateWindow: time.Minute}},
	}
	// created starts a server without stream and creates cfg's there.
	created := func(t *testing.T, cfg jetstream.StreamConfig) *nats.Conn {
		owner, err := events.NewOwner()
		if err != nil {
			t.Fatal(err)
		}
		s, err := events.StartServer(events.ServerConfig{Dir: t.TempDir(), Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nc, err := events.ConnectInProcess(s, owner.Option())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctxT(t), cfg); err != nil {
			t.Fatalf("create: %v", err)
		}
		return nc
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := safe()
			tc.change(&cfg)
			nc := created(t, cfg)
			_, err := events.OpenStore(ctxT(t), nc, tc.open)
			if !errors.Is(err, events.ErrConfig) {
				t.Fatalf("open = %v; want ErrConfig", err)
			}
			t.Log(err)
		})
	}
	// The previous release created its stream without compression: it opens as it is, and
	// keeps its configuration.
	t.Run("uncompressed stream opens", func(t *testing.T) {
		st, err := events.OpenStore(ctxT(t), created(t, safe()), events.StoreConfig{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		info, err := st.StreamInfo(ctxT(t))
		if err != nil || info.Config.Compression != jetstream.NoCompression {
			t.Fatalf("stream info %+v, %v; want no compression", info, err)
		}
	})
	t.Run("safe stream opens", func(t *testing.T) {
		env := eventstest.Start(t)
		if _, err := events.OpenStore(ctxT(t), env.Conn, events.StoreConfig{Replicas: 1, DuplicateWindow: 2 * time.Minute}); err != nil {
			t.Fatalf("reopen: %v", err)
		}
	})
}

// apiCall sends a JetStream API request and returns its error as a *jetstream.APIError.
func apiCall(t *testing.T, nc *nats.Conn, subj, body string) error {
	t.Helper()
	m, err := nc.RequestWithContext(ctxT(t), subj, []byte(body))
	if err != nil {
		return err
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	return nil
}
