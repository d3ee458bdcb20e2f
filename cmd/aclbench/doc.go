// Command aclbench generates realistic tenants, loads them into the access-control backend and
// measures it: throughput, latency percentiles, memory, and how each grows with the data set.
//
// # Data sets
//
// A data set is a seed and a scale (--records over all tenants, --principals, --tenants,
// --presets). Each tenant follows its preset's profile (profiles.go): trackops tenants have
// staff and client contacts, cases, invoices linked to cases with salespeople, expenses and
// reviews; reconpro tenants have the article's staff, client and employee roles (technicians
// with the feature they need) and team/area-scoped work; probuild tenants have admins,
// managers, workers and subcontractors with projects, posts and owned timesheets. Principals
// get a mix of access levels (full, full_location, limited, disabled), one location, team and
// area each, a few direct grants and denials; records get clients, units, owners, assignees
// with relations and links. Every principal, record and command is a pure function of (seed,
// tenant, index): the same seed gives the same commands byte for byte (command ids are UUIDv5 of
// the seed), another seed gives others, and any record can be rebuilt alone, so a workload picks
// its targets without keeping the data set in memory. `aclbench gen` prints the commands.
//
// # Loading
//
// --load fast (default) decides every generated command with aggregates.Decide on the facts
// so far and appends the events straight to the stream with asynchronous publishes (one
// message per command and aggregate, the command id as message id, as the command service
// writes them; TestLoadPathsAgree checks that both paths store the same events). It must be the
// stream's only writer while it runs, and loads 10^6 records in minutes; it runs in-process only,
// where the tool's stack holds the store owner's key (a running acld lets nobody else write its
// stream: use --load commands with --nats-url). --load commands sends
// the same commands through commands.Client over NATS, --load-concurrency at a time; its
// phases are reported as measurements too. --data DIR keeps the server's data; a later run
// with the same seed and scale on DIR skips loading.
//
// # Workloads
//
//	aclbench run <workload>[,<workload>...]|all [flags]
//
// In-process by default: the tool starts what acld runs (embedded NATS, the store, the command
// service, the projector and engine, replay for as_of, the HTTP and NATS query servers) in a
// temp dir. With --nats-url (and --http-url) it drives a running acld instead; the workloads that
// measure a package directly (check in-process, asof) then do not apply.
//
//	projection  a fresh read model catching up from the stream: events/s, bounded by the
//	            projector's decoding and Pebble batch writes (one goroutine)
//	rebuild     replay.Rebuild of the projections and the audit index: events/s
//	check       Engine.Check in-process, --workers callers: the evaluator over one Pebble
//	            snapshot per query; bounded by CPU (2 callers fill 2 cores)
//	check-nats  the same over NATS requests (acl.queries.<tenant>.check): adds a NATS round trip
//	check-http  the same over HTTP, one keep-alive connection per caller: adds net/http
//	visible     first page (100) for principals at level full and at level limited, and a full
//	            listing (pages of 1000) for one full principal; --via inprocess|http|nats
//	principals  who may view a record: cost grows with the holders of the roles that grant it
//	asof        replay's AsOf at random moments (checkpoint copy + replay of the events after
//	            it) then a check; bounded by --checkpoint-every (acld's default 1000)
//	console     the auditor's console (/ui/ as acld serves it) page by page, one auditor at a
//	            time: tenant, principal (full, limited, limited as of a random past moment),
//	            record, a limited principal's diff from a past moment, check
//	ryw         AssignRecord through the command path, then check with min_seq = its answer;
//	            the latency is from the command's answer to the check's answer
//	commands    the steady-state command mix (gen_ops.go) with each of --clients clients
//	memory      RSS and Go heap after the workloads before it (the RSS aim)
//
// Each result has the throughput, latency p50/p90/p99/p99.9/max (histogram.go: log-linear
// buckets, within 1.6 %), RSS now and peak (/proc/self/status), Go heap, the 1-minute load
// average (above the core count, other processes shared the CPU), errors by code, and the aims
// of issue #7 it is held against (aims.go). A run prints a table and writes all of it as JSON to
// --out (default /tmp/aclbench-<time>.json); --profile DIR writes a CPU and heap profile per
// workload (go tool pprof -top).
//
//	aclbench compare a.json b.json        b against a, measurement by measurement
//	aclbench scale <workloads> --scales 1e4,1e5,1e6 --svg plot.svg
//	                                      a fresh data set per size; prints the exponent k of
//	                                      cost ~ records^k and plots latency and cost per op
//
// Examples:
//
//	go run ./cmd/aclbench run all --records 1e4 --duration 5s
//	go run ./cmd/aclbench run check,visible --records 1e6 --data /tmp/acl1m --keep --profile /tmp/prof
//	go run ./cmd/aclbench run commands --load commands --records 1e4 --clients 1,4,16
//	go run ./cmd/aclbench scale check,visible,projection --scales 1e4,1e5 --svg /tmp/scale.svg
//
// In-process figures include the tool itself (the closed-loop callers, the histograms); RSS
// includes the embedded NATS server and every cache, so it is an upper bound of acld's. Over
// HTTP and NATS in-process, the callers take about a third of the CPU (net/http client,
// JSON): the server alone would do more.
//
// # Figures
//
// Measured 2026-11-29 on the shared 2-core machine (1-minute load average 2.3 to 7 while
// measuring: other processes had part of the CPU), trackops, seed 1, --duration 5s, acld's
// defaults (64 MiB block cache, a checkpoint every 20000 events), in-process. Throughput, p50 /
// p99:
//
//	                          10^4 records          10^5 records           10^6 records
//	projection                -                     56k events/s           21k events/s
//	rebuild projections/audit -                     53k / 24k events/s     20k / 7.0k events/s
//	check in-process          253k/s 4.3/51 µs      171k/s 5.6/126 µs      37k/s 4.0/446 µs
//	check NATS (32 callers)   -                     26k/s 0.9/6.9 ms       8.6k/s 1.4/34 ms
//	check HTTP (32 callers)   11k/s 1.9/16 ms       7.9k/s 2.3/24 ms       4.9k/s 2.8/47 ms
//	visible first page full   -                     46 µs / 0.4 ms         29 µs / 2.5 ms
//	visible first page limited -                    29 µs / 1.3 ms         25 µs / 1.5 ms
//	principals                -                     57/s 30 ms / 85 ms     0.65/s 2.1 s / 4.1 s
//	as_of random moment       -                     0.55 s / 1.1 s         1.3 s / 4.2 s
//	ryw (answer -> check)     -                     154 µs / 7.4 ms        83 µs / 1.0 ms (alone)
//	commands, 16 clients      -                     1.1k/s 7.5/118 ms      0.63k/s 18/127 ms
//	RSS after the workloads   202 MB                1109 MB                2111 MB
//
// The command path's loader at 10^4 (64 in flight): RegisterRecord 12.2k/s, the principals
// phase 700/s (SetAccessLevel is an atomic batch with the tenant's seat count).
package main
