package events

// API SKETCH — the events helper replaces this file with the real implementation, keeping these
// signatures (other packages are written against them).

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ErrConflict: the expected last sequence of a subject did not match (JetStream 10071/10164).
var ErrConflict = errors.New("events: wrong last sequence")

// ErrUnavailable: the stream has no leader or JetStream did not answer in time.
var ErrUnavailable = errors.New("events: store unavailable")

// StoreConfig configures the stream.
type StoreConfig struct {
	Stream          string        // default "ACL_EVENTS"
	Replicas        int           // default 1
	DuplicateWindow time.Duration // default 2m
}

// Message is one stored JetStream message: all the events of one command for one aggregate.
type Message struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Events  []Envelope // each with Seq filled in
}

// Appended is the result of an append.
type Appended struct {
	Seq       uint64 // sequence of the (last) message written, or of the original on a duplicate
	Duplicate bool   // the message id was seen inside the duplicate window: nothing was written
}

// BatchItem is one message of an atomic batch.
type BatchItem struct {
	Subject  string
	Expected uint64 // expected last sequence of Subject; 0 means "no message yet"
	MsgID    string
	Events   []Envelope
}

// Store is the event store on JetStream.
type Store struct{ js any }

// OpenStore creates or checks the stream and returns the store.
func OpenStore(ctx context.Context, nc *nats.Conn, cfg StoreConfig) (*Store, error) {
	panic("sketch")
}

// Append publishes one message carrying envs on subject, expecting expected as the subject's last
// sequence (0: none yet), with msgID as Nats-Msg-Id.
func (s *Store) Append(ctx context.Context, subject string, expected uint64, msgID string, envs []Envelope) (Appended, error) {
	panic("sketch")
}

// AppendAtomic publishes several messages as one atomic batch: all stored or none.
func (s *Store) AppendAtomic(ctx context.Context, items []BatchItem) (Appended, error) {
	panic("sketch")
}

// Load returns the messages of subject with sequence > after, in order.
func (s *Store) Load(ctx context.Context, subject string, after uint64) ([]Message, error) {
	panic("sketch")
}

// LastSeq returns the stream's last sequence (0 when empty).
func (s *Store) LastSeq(ctx context.Context) (uint64, error) { panic("sketch") }

// Follow delivers messages with sequence >= from, in order, in batches, to fn until ctx ends or
// fn fails. Live: it keeps waiting for new messages.
func (s *Store) Follow(ctx context.Context, from uint64, fn func([]Message) error) error {
	panic("sketch")
}

// Read returns the messages with from <= seq <= to (to 0: up to the last), in order, then returns.
func (s *Store) Read(ctx context.Context, from, to uint64, fn func([]Message) error) error {
	panic("sketch")
}

// SeqAtTime returns the sequence of the last message stored at or before t (0 if none).
func (s *Store) SeqAtTime(ctx context.Context, t time.Time) (uint64, error) { panic("sketch") }

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	Dir    string // JetStream store directory
	Listen string // "host:port"; "" = no listener (in-process only); port -1 = random
	Sync   string // "always" or a duration such as "100ms" (fsync interval); "" = default
}

// StartServer starts an embedded nats-server with JetStream and waits until it is ready.
func StartServer(cfg ServerConfig) (*server.Server, error) { panic("sketch") }

// ConnectInProcess connects to an embedded server without a socket.
func ConnectInProcess(s *server.Server, opts ...nats.Option) (*nats.Conn, error) { panic("sketch") }
