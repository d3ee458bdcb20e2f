package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultSnapshotBucket is the object store bucket of Snapshots (stream OBJ_ACL_SNAPSHOTS).
const DefaultSnapshotBucket = "ACL_SNAPSHOTS"

// ErrNoSnapshot: there is no usable snapshot of a subject (none stored, or one taken of another
// incarnation of the stream or past its end). The caller loads the whole history.
var ErrNoSnapshot = errors.New("events: no usable snapshot")

// Snapshots keeps derived states of aggregates, each at a sequence of its subject, so that
// loading an aggregate with a long history (a tenant's subject holds a seat change per access
// level change) reads the state and then only the messages after that sequence.
//
// A snapshot is never authoritative: it lives outside the event stream (a JetStream object
// store, one object per subject, replaced in place), the state it holds is rebuilt from events,
// and a reader that finds none, or one it cannot decode, loads the whole history instead. Get
// refuses a snapshot taken of another stream with the same name (the stream's creation time
// is stored with it) or at a sequence past the stream's end. The encoding of the state is the
// caller's, which versions it.
type Snapshots struct {
	obj     jetstream.ObjectStore
	store   *Store
	created string // the stream's creation time, UnixNano, as stored with each snapshot
}

// Metadata keys of a snapshot object.
const (
	snapSeqKey     = "acl_seq"
	snapCreatedKey = "acl_stream_created"
)

// OpenSnapshots opens the snapshot bucket of the store's stream, creating it (file storage,
// the stream's replicas) when it does not exist. bucket "" is DefaultSnapshotBucket.
func (s *Store) OpenSnapshots(ctx context.Context, bucket string) (*Snapshots, error) {
	if bucket == "" {
		bucket = DefaultSnapshotBucket
	}
	info, err := s.StreamInfo(ctx)
	if err != nil {
		return nil, err
	}
	obj, err := s.js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obj, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket,
			Description: "derived states of " + s.name + " aggregates (not authoritative)",
			Storage:     jetstream.FileStorage, Replicas: info.Config.Replicas})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obj, err = s.js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("events: open snapshot bucket %s: %w", bucket, mapErr(err))
	}
	return &Snapshots{obj: obj, store: s, created: strconv.FormatInt(info.Created.UnixNano(), 10)}, nil
}

// Put stores data as the snapshot of subject at seq (the last sequence of the subject it
// reflects), replacing the previous one.
func (sn *Snapshots) Put(ctx context.Context, subject string, seq uint64, data []byte) error {
	meta := jetstream.ObjectMeta{Name: subject, Metadata: map[string]string{
		snapSeqKey: strconv.FormatUint(seq, 10), snapCreatedKey: sn.created}}
	if _, err := sn.obj.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("events: put snapshot of %s at %d: %w", subject, seq, mapErr(err))
	}
	return nil
}

// Get returns the snapshot of subject and the sequence it was taken at, or an error wrapping
// ErrNoSnapshot when there is none that belongs to this stream; other errors are the store's.
// The sequence and the data come from the one object read (a Put may replace it meanwhile).
func (sn *Snapshots) Get(ctx context.Context, subject string) (data []byte, seq uint64, err error) {
	res, err := sn.obj.Get(ctx, subject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, fmt.Errorf("events: snapshot of %s: %w", subject, ErrNoSnapshot)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("events: snapshot of %s: %w", subject, mapErr(err))
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, 0, fmt.Errorf("events: snapshot of %s: %w", subject, mapErr(err))
	}
	seq, perr := strconv.ParseUint(info.Metadata[snapSeqKey], 10, 64)
	if perr != nil || info.Metadata[snapCreatedKey] != sn.created {
		return nil, 0, fmt.Errorf("events: snapshot of %s was taken of another stream: %w", subject, ErrNoSnapshot)
	}
	// Sized from the object's info: io.ReadAll would grow (and clear) its buffer ~20 times.
	data = make([]byte, info.Size)
	if _, err = io.ReadFull(res, data); err == nil {
		// The end of the object is where its digest is checked.
		var one [1]byte
		if n, rerr := res.Read(one[:]); n != 0 || !errors.Is(rerr, io.EOF) {
			err = fmt.Errorf("object longer than its size %d (%w)", info.Size, rerr)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("events: snapshot of %s: %w", subject, mapErr(err))
	}
	last, err := sn.store.LastSeq(ctx)
	if err != nil {
		return nil, 0, err
	}
	if seq > last {
		return nil, 0, fmt.Errorf("events: snapshot of %s at %d is past the stream's end %d: %w", subject, seq, last, ErrNoSnapshot)
	}
	return data, seq, nil
}
