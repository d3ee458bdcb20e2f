// Package replay owns audit and time travel (SPEC section 4): the history and diff queries, the
// as_of answers of every query, the read-model checkpoints they start from, and the rebuild and
// verification of read models from the event stream. The stream stays the only source of truth:
// everything here can be deleted and rebuilt from it.
//
// # API (what acld wires)
//
//	svc, err := replay.New(store, db, proj, replay.Options{Dir: dataDir + "/replay", CheckpointEvery: n})
//	svc.Start(ctx)                               // audit index follower, checkpoints, back-fill
//	svc.AsOf(ctx, tenant, replay.Moment{...})    // the projections server's AsOf hook
//	svc.History(ctx, tenant, replay.HistoryRequest{...})
//	svc.Diff(ctx, tenant, replay.DiffRequest{...})
//	svc.Close()
//	replay.Rebuild(ctx, store, dir, replay.ModelProjections|ModelAudit, to, progress)
//	replay.Verify(dirA, dirB)                    // key by key, both opened read-only
//
// # History: an audit index of its own
//
// A Pebble database in <Dir>/audit, maintained by its own follower of the stream (Audit.Run), so
// it never slows the projector. It holds no event bodies, only which stream sequences belong to
// whose history and why; a history page reads its messages from the stream by sequence (direct
// get, a few in parallel). Key layout (components end with 0x00; <seq> is 8 bytes big-endian):
//
//	<t> p <principal> <seq>            entry: the principal's history
//	<t> r <type> <id> <seq>            entry: the record's history
//	<t> w <seq>                        entry: tenant-wide changes (policy, features)
//	<t> T                              tenant state: features, types with an implication
//	<t> P <principal>                  principal state: kind, roles, first and removal sequences
//	<t> R <type> <id>                  record state: client, owner, assignees, links, linked_by
//	<t> h <role> <principal>           ""  active holders of a role
//	<t> L <via type> <via id> <type> <id>  ""  records linking to via
//	!applied                           the last applied sequence
//
// A record state's linked_by counts the L keys under it (each distinct linking record once):
// a change of its assignees scans them only when it is above 0. An index written before
// f63ac36 may hold counts that differ (links naming one record twice, then none); opening an
// index checks them in the background, after the scan of its state keys, and Audit.Run logs
// the records and the command that mends them (aclctl rebuild --model audit).
//
// An entry lists the envelopes of the message that belong to the history and why ("" for the
// aggregate's own; "role:<id>", "record:<type>/<id>", "link:<type>/<id>", "client:<type>/<id>",
// "policy", "subscription"). What belongs:
//
//   - a principal: its own events; changes of a role it holds at that moment; the events of any
//     record that change its ties to it (owner, or a relation: assigned, unassigned, registered,
//     updated, removed); policy changes and subscription changes that change the features.
//   - a record: its own events; changes of the assignees of a record it links to (a link rule
//     follows them), including that record's registration and removal; for a client record,
//     the changes of records naming it as client while an implication rule starts from their
//     type (TO-4f); policy and feature changes. Principal-side changes are not in it. A
//     principal's own record (type user, employee, client_contact) shows the principal's own
//     events; a unit's shows its definition.
//
// Trade-offs: role changes are copied to every holder's log at write time (one key per holder:
// a role of 10^5 holders writes 10^5 small keys once), so that a history is one range scan;
// policy and feature changes concern everyone and are stored once, merged at query time within
// the principal's or record's lifetime. The index is built live, so a history query costs one
// scan and one direct get per message shown, independent of the stream's length. The
// alternative, filtering the stream by subject at query time, cannot find the indirect causes
// (which records tie a principal, which roles it held) without this state anyway.
//
// Invariants: a batch's entries, states and applied sequence are committed together; messages
// at or below the applied sequence are skipped, so a crash or a redelivery loses or doubles
// nothing. The index is written without a WAL: a crash loses the batches after its last flush,
// whole, and the follower reads them from the stream again (Close flushes). The index is a pure function of the stream: Rebuild(ModelAudit) gives it byte for
// byte (tested).
//
// Freshness: a history is at least as fresh as the live read model was when asked (the index
// follows the stream on its own; a new replay directory catching up answers not_caught_up).
//
// History bounds: from and to are moments (a sequence, or an RFC 3339 time meaning the last
// event at or before it), both included; as_of caps to. Pages never split a message: a page
// holds at most limit events unless one message alone has more; next_cursor is the sequence of
// its last message. seq is the last sequence covered. A to, as_of or min_seq the index has not
// applied waits (Options.Wait) then answers not_caught_up.
//
// # as_of: checkpoints and overlays
//
// The checkpoints live in <Dir>/checkpoints/ckpt-<seq>, one at every multiple of
// CheckpointEvery the live model has applied. They are not taken from the live model: its
// compactions rewrite its tables, so each of its checkpoints ended up pinning its own copy of
// most of the model (1.3 GB of checkpoints for a 128 MB model after a bulk load), and the disk
// budget then left a handful of them (at 10^6 records a random as_of replayed up to a million
// events: 42 s). A filler replays the stream into a scratch copy of the newest checkpoint
// (hard links), opened without compactions, flushes at each multiple and checkpoints it: each
// checkpoint links the tables of the one before plus the one table its flush wrote. Hundreds of
// checkpoints so cost about the data written once; tables are compressed with zstd (at 10^6
// records: 695 checkpoints take 183 MiB for a 203 MiB model). The copy stays open as the
// chain's head. Once it has caught up with the live model, it follows the live projector's
// committed batches rather than the stream: the projector hands each batch it commits
// (projections.Projector.AddMirror, ending a batch at each multiple), the filler applies it to
// the head as written (no state is read: replaying read each changed state through every table
// of the chain, ~0.5 ms per event at 10^6 records) and checkpoints the head between two batches.
// It replays the stream only to catch up: at start (the whole history the first time), when the
// bounded queue of batches overflowed, and for gaps below the newest checkpoint. The grid of grid.go may thin older checkpoints
// (DenseCheckpoints; by default all stay, thinning frees only their manifests) and the budget
// (CheckpointBudget) coarsens it when the checkpoints pin more than it allows. Whatever the
// grid, a checkpoint whose segment is read as of its flushes (below: its last checkpoint
// answers each of its moments as the checkpoint would) is dropped, unless it is a segment's
// end, among the newest 64 of the newest segment, or newer than the shared base's checkpoint
// (which moves only when an answer comes: after an idle spell the moments since start from their
// own checkpoints; checkpoints.servedByFlushes): each kept one cost its manifest, the list of
// every table it links (42.5 MB for 346 checkpoints at 10^6
// records). A checkpoint is dropped by renaming its directory out of the listing, then
// removing it, so that a crash in between leaves no half-removed checkpoint to open.
//
// An as_of answer for tenant T at sequence S starts from the newest checkpoint at or below S.
// The chain's tables are tagged with their largest Pebble sequence number (a block property,
// projections.DBOptions.TagApplied) and each flush is one table, so one open checkpoint can be
// read as of any checkpoint whose tables it links: an iterator that skips the tables flushed
// after it reads the model as it stood then (projections.NewOverlayAsOf; Pebble's Get has no
// table filter, so the overlay's point reads go through one such iterator). The newest
// checkpoint is so opened once, read-only, as the shared base (asof_bases.go), in the
// background on the first answer and again on a newer one at most every 10 s while answers
// come; an answer then opens nothing. A moment after the shared base's checkpoint, or any
// moment of a chain with untagged tables (made before the tags), starts from its checkpoint
// opened read-only in place (a base: the last OpenCheckpoints used stay open, LRU, sharing one
// block cache; an open base pins its checkpoint against thinning, which then removes it when
// the base closes; sequence 0 is an empty model in <Dir>/scratch). The state is an overlay on
// the base (projections.Overlay: a Pebble indexed batch, whose reads see the batch
// over the checkpoint): T's messages after the checkpoint up to S (read from the event log,
// <Dir>/events, a Pebble copy of the stream keyed by tenant and sequence that follows the stream
// as the audit index does (eventlog.go); for a moment the log has not reached, by batched direct
// gets of every tenant's messages, a thousand per round trip, while the base is found or opened,
// filtered by subject here: other tenants' events cannot change T's answers) are applied into the batch by
// a projector of its own (the same code as the live one, reading its state through the batch),
// which then says it has applied S (a message without events), and a projections.Engine reads
// the overlay: equal, by construction and by test, to the pure evaluator over the events up to
// S. Nothing is copied or committed, and the states of moments after one open checkpoint share
// its open tables. The last few states (tenant, S) stay open (CachedStates, LRU; concurrent
// askers share one build), so the pages of one question replay once. A state not cached takes
// over the overlay of an idle cached state of the same tenant on the same checkpoint at a
// sequence below S, and replays only the events in between: an auditor stepping forward through
// time, or a diff's "to" after its "from", costs a short replay. A time resolves to the last
// event at or before it (events.Store.SeqAtTime; a future time: now); a sequence the live model has not
// applied waits like min_seq, then not_caught_up.
//
// Rebases: each flush is one level-0 table, never compacted, so without more the newest
// checkpoint linked one table per CheckpointEvery events of the whole history (1,411 at 10^6
// records), and every base opened on it paid for each: Pebble's level-0 sublevels (21-49 MB of
// heap), its file cache and descriptors, a range read merging every table. So at a checkpoint
// where the head holds more than RebaseTables level-0 tables, the filler first compacts it
// (projections.DB.Rebase: a few tables below level 0, the model as of that checkpoint), and the
// checkpoints from there on link those plus their own flushes: a segment of the chain. Any
// checkpoint so links at most about RebaseTables + 2 tables. A rebased DB is read as of its
// rebase and its later flushes only (projections.Flushes.From: the compaction kept the newest
// version of each key); a moment before the shared base's rebase reads the base of the newest
// checkpoint before it, the last of the older segment, as of its flushes (bases.acquireSegment),
// so that the moments of a segment share one open base too. The state versions take a rebase's
// tables as one point (their states as of the rebase). The checkpoints before a rebase keep their
// tables (hard links): each rebase costs the model once more on disk, until thinning drops
// every checkpoint of the older segment (checkpoints.coarsen). A chain made before the rebases
// is read as it was and rebased at its next checkpoint; a crash during a rebase loses only
// the head, a scratch copy made again at the next start.
//
// Cost: the replay is fewer than CheckpointEvery messages (of the tenant), and reading the
// shared base costs nothing more than its reads (a point read consults the filter of each
// table up to the checkpoint, as reading that checkpoint did; the applied sequence, in every
// table, is answered from the list of flushes). Opening a checkpoint instead reads its
// manifest and opens its tables (one per CheckpointEvery events before it, all in level 0:
// ~45 µs each on the shared 2-core machine): at 10^6 records ~40 of an answer's ~56 ms, before
// the shared base. A chain from before the tags is rebuilt with them by removing
// <Dir>/checkpoints while acld is stopped (the filler then replays the stream once).
//
// # Diff
//
// The principal's narrowed grants at from and at to, each from an as_of engine, compared without
// their provenance (a role revoked and assigned again is no change); for each type it held a
// view permission of at either moment, the records it could view at each and which it gained
// and lost: the two visible lists are walked in step, a page of each at a time, both engines
// held open, so memory does not grow with what it sees (the first aggregates.MaxDiffIDs ids of each
// direction are listed, all are counted); the principal's history after from up to to (the
// causes). PB-2: the tenant_created event carries
// the preset, so the defaults are answered as they were.
//
// # Rebuild and verify
//
// Rebuild replays the stream from sequence 1 into an empty directory, in batches of 16384
// messages, and reports progress (events, rate, ETA). Both models are written without a WAL
// (flushed before closing: a rebuild that stops is started over) with larger memtables; the audit
// index's batches are written in key order, and its rebuild reads no state it never wrote (its
// cache of states, 128 MiB, holds some 10^6 of the compare shape before it drops any). Verify opens two model directories
// read-only and compares every key and value, the applied sequence included; the live model is
// locked while acld runs, so verify a checkpoint of it (aclctl verify does), or offline.
package replay
