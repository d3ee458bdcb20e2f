package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// ErrConflict: the expected last sequence of a subject did not match (JetStream 10071/10164).
var ErrConflict = errors.New("events: wrong last sequence")

// ErrUnavailable: the stream has no leader or JetStream did not answer in time.
var ErrUnavailable = errors.New("events: store unavailable")

// Defaults of StoreConfig.
const (
	DefaultStream          = "ACL_EVENTS"
	DefaultDuplicateWindow = 2 * time.Minute
)

// StoreConfig configures the stream.
type StoreConfig struct {
	Stream string // default "ACL_EVENTS"
	// Replicas of the stream: 0 means 1 when creating and whatever the stream has when it
	// exists; any other value must match an existing stream.
	Replicas int
	// DuplicateWindow: 0 means 2m when creating and whatever the stream has when it exists;
	// any other value must match an existing stream.
	DuplicateWindow time.Duration
	// Uncompressed creates the stream without compression (the default is S2). It decides
	// only at creation: an existing stream keeps what it was created with. A compressed block
	// is decompressed whole when read back, as an as_of answer does for the events after its
	// checkpoint: at 10^6 records, interleaved, p50 15.6-15.9 ms and p99 145 ms compressed
	// against 13.2-14.0 ms and 125-131 ms uncompressed (README, Round 8 scorecard), for a
	// stream 3.2 times larger on disk.
	Uncompressed bool
}

// Store is the event store on JetStream. It is safe for concurrent use.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	// prefix is unique to this store; the consumer of its n-th follow is named
	// <prefix>_<n>_1 before it is created (orderedConsumer).
	prefix  string
	follows atomic.Uint64
}

// streamConfig is the one configuration this package creates.
func streamConfig(cfg StoreConfig) jetstream.StreamConfig {
	replicas, window := cfg.Replicas, cfg.DuplicateWindow
	if replicas == 0 {
		replicas = 1
	}
	if window == 0 {
		window = DefaultDuplicateWindow
	}
	compression := jetstream.S2Compression
	if cfg.Uncompressed {
		compression = jetstream.NoCompression
	}
	return jetstream.StreamConfig{
		Name:               cfg.Stream,
		Subjects:           []string{Prefix + ".>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		MaxMsgsPerSubject:  -1,
		MaxMsgSize:         -1,
		Replicas:           replicas,
		Duplicates:         window,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		// Each 8 MB message block is compressed with S2 once full (the block being written
		// stays as it is): the JSON envelopes take about a quarter of their size, 196 MB of
		// blocks after the import of the compare shape against some 50. A block read back is
		// decompressed whole, some 10 ms for 8 MB on this machine, once while it stays in
		// the server's cache (10 s). The expected-last-subject-sequence check of an append
		// reads the block's subject state (nats-server 2.15.3), which the server rebuilds
		// from the block, so decompresses it, only after 2 minutes without use. A stream
		// created without compression keeps its configuration.
		Compression: compression,
	}
}

// OpenStore creates or checks the stream and returns the store. The configuration is read
// back from the server after creation and on every open: a stream that could lose or rewrite
// history (deletes or purges allowed, limits, TTLs, rollups) is refused with ErrConfig.
func OpenStore(ctx context.Context, nc *nats.Conn, cfg StoreConfig) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("events: jetstream context: %w", err)
	}
	return openStore(ctx, nc, js, cfg)
}

// openStore is OpenStore on js (a test's may send its requests elsewhere than $JS.API).
func openStore(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Replicas < 0 || cfg.DuplicateWindow < 0 {
		return nil, fmt.Errorf("%w: stream %s: negative replicas or duplicate window", ErrConfig, cfg.Stream)
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Two processes may race here: creating with an identical config is idempotent on the
		// server, and a different config fails, so the read-back below decides either way.
		st, err = js.CreateStream(ctx, streamConfig(cfg))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, cfg.Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("events: open stream %s: %w", cfg.Stream, mapErr(err))
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: read back stream %s: %w", cfg.Stream, mapErr(err))
	}
	if err := checkStreamConfig(info.Config, cfg); err != nil {
		return nil, err
	}
	return &Store{nc: nc, js: js, stream: st, name: cfg.Stream, prefix: "acl_" + nuid.Next()}, nil
}

// checkStreamConfig refuses a stream whose configuration does not keep every event forever
// or lacks what this package relies on. It names every problem so an operator can fix them
// in one go.
func checkStreamConfig(got jetstream.StreamConfig, want StoreConfig) error {
	var bad []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	check(got.DenyDelete, "deny_delete is false")
	check(got.DenyPurge, "deny_purge is false")
	check(slices.Equal(got.Subjects, []string{Prefix + ".>"}), "subjects are %v, want [%s.>]", got.Subjects, Prefix)
	check(got.Storage == jetstream.FileStorage, "storage is %v, want file", got.Storage)
	check(got.Retention == jetstream.LimitsPolicy, "retention is %v, want limits", got.Retention)
	check(got.MaxMsgs <= 0 && got.MaxBytes <= 0 && got.MaxAge == 0 && got.MaxMsgsPerSubject <= 0,
		"limits set (max_msgs %d, max_bytes %d, max_age %v, max_msgs_per_subject %d), want none",
		got.MaxMsgs, got.MaxBytes, got.MaxAge, got.MaxMsgsPerSubject)
	check(got.SubjectDeleteMarkerTTL == 0, "subject_delete_marker_ttl is set")
	check(!got.AllowMsgSchedules, "allow_msg_schedules is true")
	check(!got.AllowMsgTTL, "allow_msg_ttl is true")
	check(!got.AllowRollup, "allow_rollup_hdrs is true")
	check(!got.Sealed, "stream is sealed")
	check(got.AllowDirect, "allow_direct is false")
	check(got.AllowAtomicPublish, "allow_atomic is false")
	check(got.Duplicates > 0, "duplicate window is off")
	check(want.Replicas == 0 || got.Replicas == want.Replicas, "replicas %d, configured %d", got.Replicas, want.Replicas)
	check(want.DuplicateWindow == 0 || got.Duplicates == want.DuplicateWindow,
		"duplicate window %v, configured %v", got.Duplicates, want.DuplicateWindow)
	if len(bad) > 0 {
		return fmt.Errorf("%w: stream %s is not a safe event store: %s", ErrConfig, got.Name, strings.Join(bad, "; "))
	}
	return nil
}

// Name is the stream's name.
func (s *Store) Name() string { return s.name }

// Conn is the connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Replicas is the stream's replica count as of when the store was opened.
func (s *Store) Replicas() int { return s.stream.CachedInfo().Config.Replicas }

// StreamInfo reads the stream's configuration and state from the server.
func (s *Store) StreamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: stream info %s: %w", s.name, mapErr(err))
	}
	return info, nil
}
