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
// Nats-Msg-Id (the command id, plus the aggregate when a command writes several) and
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
// # Performance
//
// See the Performance section at the end of this comment for measured figures.
package events
