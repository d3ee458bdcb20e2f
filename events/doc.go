// Package events owns the event log: event types and their versioned JSON schema, the
// envelope, subjects, and the event store on NATS JetStream (stream set-up, append with
// optimistic concurrency and de-duplication, atomic batches, reading an aggregate's history,
// following the stream, time to sequence). It imports nothing of ours.
//
// # Wire format
//
// One stream, ACL_EVENTS, subjects acl.events.> (SPEC section 6): acl.events.<tenant>.tenant.<tenant>,
// acl.events.<tenant>.principal.<id>, acl.events.<tenant>.record.<type>.<id>. One JetStream
// message per command and aggregate; its data is a JSON array of one or more envelopes; headers
// Nats-Msg-Id (the command id and its tenant, plus the aggregate when a command writes several:
// package commands, msgID) and
// Nats-Expected-Last-Subject-Sequence. An envelope's seq is never stored: it is the sequence of
// the message that carried it, filled in when read.
//
// # Invariants
//
//   - The stream keeps every event forever: file storage, limits retention with no limit,
//     DenyDelete and DenyPurge, no TTLs, rollups, delete markers or schedules. OpenStore reads
//     the configuration back after creating the stream and on every open, and refuses
//     (ErrConfig) a stream that breaks any of this.
//   - Nothing invalid is written: Append checks every envelope (Validate, which decodes its
//     data), that it belongs to the aggregate of the subject, and the subject's tokens, before
//     publishing; a failure wraps ErrInvalid and writes nothing.
//   - A message is all or nothing: the events of one command for one aggregate are one message.
//     An atomic batch (several aggregates) is stored whole or not at all.
//   - An append states the subject's last sequence it decided on (0: none yet); a mismatch
//     wraps ErrConflict and writes nothing. A message id seen in the duplicate window writes
//     nothing and answers the original sequence.
//   - Sequences are contiguous from 1 and never reused; an acknowledged message keeps its
//     sequence across restarts.
//   - Old schema versions are upcast by Decode, when read; stored events are never rewritten.
//
// # Errors
//
// ErrInvalid (bad input, nothing written), ErrConflict (wrong last sequence), ErrUnavailable
// (no leader, no responders, timeout, connection closed: the append may or may not have been
// stored, so retry with the same message id), ErrConfig (server or stream configuration).
//
// # Reading
//
// Load uses the batched direct get API (no consumer): one request per 1000 messages of the
// subject. Its cost depends on how the subject's messages sit in the file blocks: the server
// jumps to a subject's first message in a block but scans from there to the next one, so a
// long, dense history (a busy tenant aggregate) is slow to load from 0; load after a cached
// state's sequence instead. Follow and Read run an ordered consumer (pulling 10000 ahead),
// decode in its callback with a scanner made for the exact JSON Append writes (encoding/json
// for anything else), pass chunks of messages to the follower's goroutine, and delete the
// consumer when they end. The consumer is named before it is created (acl_<store>_<n>_1), so
// one whose creation is answered after the follow gave up on it, or never, is deleted too. Decode reads the data of the frequent event types (registrations,
// assignments, level, role and unit changes) with the same kind of scanner (fastdata.go,
// about 3.5x faster than encoding/json, which still decides anything unusual). SeqAtTime asks the server for the first message stored after t
// (direct get by start time) and reads on while its events are at or before t (an event's time
// is its command's decision, a little before the server stored it).
//
// # Durability
//
// The embedded server fsyncs every 100ms by default (DefaultSync): a process crash loses
// nothing acknowledged (the data is in the page cache), a machine crash at most the last
// 100ms. "always" fsyncs every message and is about 10x slower; nats-server's own default
// (2 minutes) is no faster here.
//
// # Who may write
//
// Only the Owner (acld) writes the stream: the server's accounts are laid out so (layout.go,
// Layout.Config), the embedded server's and an external one's alike. The streams live in
// StoreAccount with the owner's nkey as its only user; every other connection is a Caller in an
// account of its own that imports the command and query services and, with ReadLog, a read-only
// JetStream API, so it can neither publish where a stream listens, nor delete, purge or update
// one (which DenyDelete and DenyPurge alone do not prevent), nor answer in acld's place. Its
// consumers are made through the owner, pull consumers only (ServeReaders): a push consumer's
// deliver subject is any subject of StoreAccount, where nats-server would publish the stream's
// messages as the account itself (onto another caller's change-feed subscription, say).
// RequestCaller names the caller of a request from the header nats-server stamps on it. An
// append with a message id retries an unanswered publish (appendAttempt) with the same id, so
// a leader lost mid-publish costs an election, not the command's whole deadline.
//
// # The change feed
//
// ChangesStream (ACL_CHANGES, memory, at most 2 minutes and 16 MiB, 2-minute duplicate window) takes the change
// feed that every acld instance derives (changes.go): each publishes a change on
// acl.feed.<tenant>.principal.<id> with a message id naming it, the stream stores an id once
// and republishes it on acl.changes.<tenant>.principal.<id>, so a core subscriber receives each
// change once however many instances publish. The store account exports acl.changes.> as a
// stream; a caller imports it and may subscribe to the tenants of Caller.Changes only.
//
// # Performance
//
// Measured with
//
//	BENCH_SYNC=2m,100ms,10ms,always go test ./events -run '^$' -bench Append -benchtime 3s
//	go test ./events -run '^$' -bench 'Replay|Load' -benchtime 3x
//
// on 2 virtual cores (AMD, Go 1.26, nats-server v2.15.2, in-process connection, ~330-byte
// envelopes) shared with other engineers' test runs, so each figure is a range over runs at
// different loads (load average 1.7 to 6):
//
//   - BenchmarkAppendParallel, 16 appenders with expected sequences: 100ms (the default)
//     10.2k-30.4k appends/s; 2m 20.5k-25.1k; 10ms 15.4k-26.3k; always 0.4k-2.3k.
//   - BenchmarkAppend, one appender: 100ms 9.4k-19.0k appends/s; 2m 13.0k-18.3k; 10ms
//     11.8k-15.4k; always 0.66k-2.7k (one fsync of 0.4-1.5 ms on this virtual disk per append).
//   - BenchmarkReplay, Read of 200k messages: 85k-313k events/s. The bare ordered consumer
//     that only counts messages (BenchmarkReplayBaseline) did 147k-325k; this package costs
//     1.33-1.43x its CPU per event (decoding is ~0.85 us per envelope, BenchmarkDecodeMessage).
//   - BenchmarkLoad of one aggregate of that stream (a message every 10,000 sequences): its
//     whole 20-message history 9-12 ms warm, up to 220 ms cold; the one message after a cached
//     state 0.2 ms warm, about 1 ms cold.
package events
