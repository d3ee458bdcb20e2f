// Package commands is the command side of the product: decoding and validating commands, the
// command service on NATS, and a Go client for services, for commands and queries alike.
//
// # The client
//
// A service holds one Client (Dial: NATS with the identity's credentials). Do and its typed
// shorthands send commands; Check, Visible, Permissions, Principals, Recipients, History, Diff,
// Tenant and Review ask queries, with the bodies and answers of aggregates/queries.go, over NATS
// (acl.queries.<tenant>.<query>) or, on a copy made by UseHTTP, over HTTP with a bearer token.
// A command's Result is a query's min_seq (After), so a service reads its own writes; AsOf asks
// about the past. Both sides retry what another try may change: a command unavailable or
// unanswered, with the same command_id, so it is applied once; a query unavailable,
// not_caught_up or unanswered, as it writes nothing; the iterators (Visible, History) go on
// from their cursor, each page asked with the min_seq of the one before. Every other error is
// an *aggregates.Error at once.
//
// # Wire format
//
// A command is a NATS request on acl.commands.<tenant>.<CommandName> (SPEC sections 5 to 7)
// whose body is the command's JSON: command_id (a UUID, canonical form), actor (system or a
// principal id) and the command's fields; unknown fields and trailing data are
// invalid_argument. The answer is {"ok":true,"seq":N,"events":[ids]} or
// {"ok":false,"error":{"code":..,"message":..}}. Instances of the service join the queue group
// acld, so each command is served by one of them.
//
// With "dry_run": true a command is decided as usual, on fresh states under the same locks,
// and nothing is appended: the answer is {"ok":true,"dry_run":true,"seq":N,"events":[the
// envelopes it would write],"effects":[...]} or the error it would get, and its command id is
// neither looked up nor remembered. The effects come from Options.Effects (the read model's
// evaluator, which commands does not import), evaluated after the read model has applied the
// stream's last sequence.
//
// # What the service keeps true
//
//   - A command is decided on the state of the aggregates it writes as of their last sequence,
//     and appended expecting exactly that sequence (one message per aggregate, an atomic batch
//     when it writes two: seats, CreateTenant). A lost race reloads and decides again, at most
//     Options.MaxAttempts times, then answers conflict. Within one instance, commands writing
//     the same aggregate take its lock (in subject order), so they do not race each other. A
//     decision that writes nothing (the command changes nothing, or is refused) has no append
//     to check it: it is answered only once the store has no message of those aggregates
//     after the states it read (execution.current), else they are read again.
//   - A command id is applied once. Its messages carry it as Nats-Msg-Id with "/<tenant>"
//     (plus "/<aggregate>" in a batch: the stream de-duplicates across tenants), and every aggregate remembers the ids it applied with the command's hash
//     (sha256 of its name and canonical JSON), sequence and event ids. A retry with the same
//     body answers the stored seq and events and writes nothing, also after the duplicate
//     window; the same id with another body is conflict. When one aggregate remembers the id
//     and another does not, the other is read again from the store before the answer (its
//     state may be behind the stream). A command that changes nothing writes
//     nothing, answers the aggregate's sequence, and so is not remembered. With the spill, a
//     state keeps its newest 48 ids in memory (a tenant's index 1,024 to 2,048) and the older
//     ones are keys of the spill, written in the same batch as the state that forgets them
//     and read when an id is not among those kept (spill_moved.go); without it, all of them.
//   - Rejected commands write nothing. Store failures answer unavailable (retry with the same
//     command id); errors without a code answer internal and are logged.
//
// # The cache
//
// Aggregate states are cached per subject with the sequence they reflect; a writer never
// mutates a shared state (it applies its events to a copy and publishes it), so decisions read
// states without locks. A tenant's memory of command ids (one per seat change) is kept by its
// entry, not in its states, so that a writer's copy does not copy it (commandIndex). Other instances' writes reach the cache through a subscription to
// acl.events.> that marks the subject stale (the instance's own appends are recognized by their
// message ids); dropped invalidations reset the whole cache. A state read but not written by a
// command (the tenant for a principal command, the actor) is thus as fresh as that feed; the
// aggregates a command writes are checked by the store (by its append's expected sequence, or,
// for a decision that writes nothing, by asking it for a newer message). The facts for Decide are read lazily
// through the cache; they do not enumerate records by client, so implication rules (view
// permissions) never authorize a command. DeleteRole and DefineRole read every principal of the
// tenant from the store to know whether the role is held.
//
// The cache holds Options.CacheSize states in memory. With Options.StateDir, principal and
// record states are also written to a local Pebble, the spill (spill.go), and a state the
// cache dropped is read back from there rather than from the stream. The spill is as trusted
// as the cache and survives restarts: its follower reads the stream after the spill's position
// and brings states older than a message of their subject up to it (starting those of
// aggregates it sees registered), the spill is read only once the
// follower has reached the stream's end as of the start, and a state is spilled only if the
// follower has seen no newer message of its subject. acl_command_state_loads_total{from}
// counts the states read from the spill and from the stream.
//
// # Tenant snapshots
//
// A tenant's subject holds a seat change per access level change, so its history grows without
// bound. The service stores a snapshot of a tenant's state (with the command ids it remembers)
// in the object store ACL_SNAPSHOTS, outside the event stream, when a load replayed, or its own
// writes added, Options.SnapshotAfter events (default 1000) and at least half as many as the
// command ids the tenant remembers; a first load reads the snapshot, then only the messages
// after its sequence. A snapshot is derived and versioned, and never needed: one that is
// missing, undecodable, of another version, subject or stream, or that does not match its
// sequence is ignored and the whole history is loaded (logged). Two instances may overwrite
// each other's snapshot with an older one; that only lengthens the tail the next load reads.
//
// # Metrics
//
// acl_commands_total{command,code} (code "ok" when accepted) and
// acl_command_duration_seconds{command}, on the Registerer of Options.
package commands
