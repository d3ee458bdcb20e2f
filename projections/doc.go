// Package projections is the read side: a projector that follows the event stream into a
// Pebble read model, the query engine over it (check, visible, permissions, principals,
// recipients, tenant), and the HTTP and NATS query servers.
//
// # What it owns
//
//   - DB: the Pebble database (FormatNewest, bloom filters, cache and memtable from DBOptions),
//     Checkpoint for replay's as_of copies, Compact after bulk loads.
//   - Projector: Run follows the store from the applied sequence; ApplyMessages applies a slice
//     of messages in one batch (replay uses it on checkpoint copies); WaitFor wakes waiters when
//     the applied sequence advances (a channel closed per commit, no polling).
//   - Engine: queries over one Pebble snapshot each, answering the sequence the snapshot holds.
//     check IS aggregates.Check over a snapshot (view implements aggregates.Facts); visible,
//     principals and recipients are index reads checked against the pure oracles.
//   - Server: query parsing shared by HTTP (POST /v1/tenants/{tenant}/{query}, /healthz,
//     /readyz, /metrics) and NATS (acl.queries.<tenant>.<query>, queue group acl-queries);
//     extension points for replay: Handle(name, handler) (history, diff; with OwnAsOf they read
//     as_of themselves and the server builds no state for it) and ServerOptions.AsOf. Check
//     bodies of the usual shape are read and answered without reflection (server_check.go);
//     any other body goes through encoding/json, with the same answers and errors.
//   - Effects (effects.go, side.go): what a change does to each principal's access (SPEC
//     section 8), by comparing two sides of one snapshot, before and after, each a view with
//     some aggregates replaced in memory. The rules are aggregates.Check and NarrowedGrants and
//     the visible query's ranges, never a copy: a principal whose own facts or grants change
//     has its visible sets of the affected types listed on both sides (unless both sides read
//     the same ranges), and every record whose state differs from the snapshot's, or whose
//     visibility depends on one that does (records linking to it, clients it implies), is
//     decided by Check on each side for the principals that may view it. Engine.Effects is a
//     dry run's (acld gives it to the command service).
//   - Feed (feed.go): the change feed. With a feed set, the projector commits each live message
//     (after the stream's last sequence when it started) in a batch of its own, takes a
//     snapshot just before the commit and hands both to the feed after it; the feed derives
//     the effects of each of the message's events and publishes them in order, on its own
//     goroutine, never holding the projector up (a full queue drops messages and announces a
//     gap). One delivery across instances is the publisher's (events.Changes). With
//     FeedOptions.Listeners it derives only what a subscription would receive, asked after the
//     commit. The projector commits together (a quiet run, Feed.quiet) the live messages of
//     tenants that nobody listened to as the last Refresh found them, with one snapshot before
//     them; after the commit the feed asks whether any subscription was made since that
//     Refresh (Listeners.Unmoved), and only then derives the run, message after message over
//     that snapshot (changesOfRun), so a subscriber present at a message's commit gets its
//     changes as before.
//
// # Invariants
//
//   - The applied sequence is written in the same Pebble batch as the effects of the messages up
//     to it. A batch is built in memory and committed whole, so after a crash at any point the
//     projector resumes from the last committed sequence: nothing lost, nothing applied twice.
//     Messages at or below the applied sequence are skipped. Commits use NoSync: the WAL keeps
//     batches atomic, and a machine crash loses only a suffix of batches the stream gives again.
//   - A batch holds what Follow hands over at once: up to 4096 messages while catching up, often
//     one when live. Its events are decoded on every core (events.Decode: a scanner for the
//     frequent types, encoding/json for the rest), then applied in order; each touched
//     aggregate is read once (from the projector's cache of committed states, else from the
//     state the command service of the same process decided the message on and offered,
//     Projector.Offer, taken only for a message whose append stated that state's sequence as
//     its subject's last, handoff.go; else Pebble) and written once; a large batch's writes
//     are sorted by key before they enter the Pebble batch (the memtable inserts sorted keys
//     several times faster).
//   - A registration event starts its aggregate without reading it: the command service never
//     registers an id twice (already_exists, ids are never reused). While catching up that is
//     most reads.
//   - While the store is unavailable, Run follows again from the applied sequence, with backoff;
//     any other error (an event that does not decode, Pebble) stops it.
//   - Every key but the applied sequence starts with "<tenant>\x00": tenants never mix, and a
//     query reads only its tenant's ranges.
//   - A record change writes O(1) keys (its state and the difference of its index entries, old
//     vs new) however many principals can see it; no principal holds a copy of what it sees.
//   - Effective grants are not materialized: a query computes them from the principal and the
//     tenant (aggregates.EffectiveGrants/NarrowedGrants), so a role change is one write (the
//     tenant), and applies to every holder at once (PB-2).
//   - The state read model is deterministic: rebuilding from the stream gives the same bytes as
//     the incrementally maintained one (TestCrashResume compares every key).
//   - Decoded states are cached (tenants per engine, principals and records in a sharded map)
//     under the sequence stored in front of each value, so a cached copy is used only for the
//     snapshot that holds that very state. Cached states are shared and never mutated. The map
//     is keyed by the 64-bit hash of the state key; a hit counts only when the entry's tenant
//     and the state's own type and id are the ones asked (a collision is a miss).
//   - Queries over the live DB share one Pebble snapshot, taken at an even projector
//     generation and used while the generation is unchanged (so it holds exactly the
//     published state, and min_seq holds); while a batch commits, a query takes its own.
//     The last query's release closes a replaced snapshot; DB.Close releases the current one.
//   - Over the live DB, the projector publishes after each commit the applied sequence and each
//     tenant's stored sequence, and notes in a modification log which state keys the batch
//     wrote; a seqlock (odd while a batch commits) tells a query whether its snapshot holds
//     exactly the published state. If so it reads neither the sequence nor the tenant, and reuses
//     a cached principal or record seen at sequence V when the log shows no write of its key
//     after V: a check on hot facts reads nothing from Pebble. Otherwise it reads them all from
//     the snapshot. Over a checkpoint (replay's as_of), it always reads.
//
// # Key layout
//
// Components are separated and ended by 0x00 (never in a token), so byte order is the order
// of the components as strings. <t> is the tenant; index values carry the record's client.
//
//	!applied                                      -> uint64 big endian: last applied sequence
//	<t> T                                         -> seq | tenant JSON (policy, roles, units; no seat holders)
//	<t> S <principal>                             -> level (seat holders above disabled)
//	<t> P <principal>                             -> seq | principal (binary, codec_binary.go)
//	<t> R <type> <id>                             -> seq | record (binary, codec_binary.go)
//	<t> a <type> <id>                             -> client   every active record of a type
//	<t> c <client> <type> <id>                    -> ""       by client
//	<t> u <kind> <unit> <type> <id>               -> client   by unit
//	<t> o <owner> <type> <id>                     -> client   by owner
//	<t> s <principal> <type> <id> <relation>      -> client   by assignee (any relation)
//	<t> l <via type> <via id> <type> <id>         -> client   record <type,id> links to <via>
//	<t> r <role> <principal>                      -> level kind [denies]   holders of a role
//	<t> g <permission> <principal>                -> ""       holders of a direct grant
//
// A role holder's value is what narrowing reads of it (roleHolderValue): the change feed
// finds the holders whose grants narrow to scope all from the index alone. Models written
// before it carried the value are migrated when a projector opens them (migrate.go).
//
// "seq" is 8 bytes big endian: the last sequence applied to that state (for the tenant, the
// last event other than seat_changed). Principals are indexed as the records they are (types
// user, employee, client_contact: owner themselves, their units and client) and units as
// records of their kind (their unit is themselves), so visible lists them like any record.
// Index entries exist only for active records; a record aggregate of a principal or unit type
// is stored but not indexed (Facts answers those types from principals and units).
//
// # Queries
//
//   - check: aggregates.Check over the snapshot; one point read per fact (principal, record,
//     linked records), the tenant from the cache. For the implication rule (TO-4f) the view
//     implements aggregates.CoveredRecords: of the client's records it reads only those p's
//     narrowed scopes of the implying permission cover (all, or client for its own client:
//     the first record; own, assigned and links: p's ranges filtered by the client in their
//     values; unit scopes: the client's ids probed in p's unit ranges).
//   - visible: the principal's narrowed grants of <type>.<action> select index ranges: all ->
//     a <type>; client -> c <client> <type>; unit:K -> u K <unit> <type> for each of its units
//     of kind K; own -> o <p> <type>; assigned -> s <p> <type>, plus, for each link rule of the
//     type and the principal's kind, l <via> <id> <type> for every via record it is assigned
//     to. Each range is read from the cursor for at most limit+1 ids, and the pages are merged
//     without duplicates. A client contact keeps entries whose value is its client. For client
//     records, implication rules (TO-4f) add the clients of the implying records it sees: with
//     the implying permission at scope all, every client having such a record (one probe of the
//     client index per client); else the clients of the implying records its ranges list.
//   - principals: the holders of a role giving the permission (or one implying it) and of a
//     direct grant of it are the candidates; aggregates.Check decides each.
//   - recipients: owner and assignees that are registered and not removed (TO-5).
//   - tenant (the console's overview): roles, units and features from the tenant's state; the
//     active records per type counted over the a <type> range (one pass: it grows with the
//     tenant's records); a page of principals from the P range after the cursor, filtered by
//     id prefix or email (decoding each principal when searching by email).
//   - permissions: kind, level, roles, denied, and the effective grants narrowed by kind and
//     level (aggregates.NarrowedGrants; none when disabled or removed), with provenance.
//
// # Figures
//
// Measured on the shared 2-core development machine while other engineers' builds and
// benchmarks ran (load average 3 to 5.5, so roughly half a core each; figures vary by 2x from
// run to run). One tenant (Trackops preset) of 2,000 staff and 100,000 records (cases, invoices
// linked to cases, 1,000 clients), built once per process:
//
//	go test ./projections/ -run '^$' -bench . -benchtime 2s
//
//	BenchmarkProjection        24,000-68,000 events/s catching up (ApplyMessages, Follow-sized
//	                           slices of 4096), 12-17 CPU-µs per event counting every thread
//	                           (compactions included; 19-30 before the event data decoder and the
//	                           reused writer); the events are registrations, ~8 keys each. Half
//	                           the projector's own CPU is Pebble's memtable insert (copying into
//	                           fresh arena pages) and the key sort. At 10^6 records
//	                           (BENCH_PROJECTION_RECORDS=1e6) 16-22 CPU-µs per event at load 5-7:
//	                           compactions are a third of it (~300 bytes compacted per event)
//	BenchmarkProjectionFollow  32,000-47,000 events/s through the real stream (30,000 events)
//	BenchmarkCheck             p50 2.5-3.6 µs, p99 10-38 µs (one caller; compacted DB, hot facts
//	                           served from the cache the modification log validates; load 7-8.7)
//	BenchmarkCheckParallel     27,500-57,900 checks/s on the two shared cores (load 7.8-8.7;
//	                           47,000-73,000 before the shared snapshot at a lower load)
//	BenchmarkVisibleFirstPage  100 ids: full 19-60 µs; limited 8-25 µs (cases), 40-137 µs
//	                           (invoices: assignments and the link rule), clients 19-52 µs
//	BenchmarkPrincipals        3-11 ms for 2,000 candidates
//
// A check that must read Pebble costs one point read per fact (~1-2 µs each from the block
// cache); size DBOptions.CacheBytes for the working set, and compact after a bulk load
// (DB.Compact): reads right after a long catch-up visit every level-0 table.
package projections
