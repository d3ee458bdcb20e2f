// Package aggregates is the domain of the access-control product: the tenant, principal and
// record aggregates (state.go, apply.go), the pure decision of every command (decide*.go), the
// decision rule of SPEC section 2 as one pure evaluator (evaluator*.go) and the presets as data.
// It does no I/O: the command service (package commands) loads state, calls Decide and appends
// the writes; the projections and replay call Apply.
//
// # Aggregates and their invariants
//
// Each aggregate is one event subject, and every write to it expects the sequence its decision
// read (optimistic concurrency), so a decision is only stored on the state it was made on.
//
//   - tenant (acl.events.<t>.tenant.<t>): policy, roles, units, subscription and seat use
//     (SeatHolders: principal -> level above disabled). Guards that read only the tenant hold by
//     its sequence: unique unit and role ids, the administrator role never changes, SetPolicy
//     keeps every name a role grants (and user.manage_access and session.login, which the
//     administrator role needs).
//   - principal (acl.events.<t>.principal.<id>): kind, email, client, units, roles, level, direct
//     grants and denials. Exclusive roles (RP-10), an email for every level above disabled
//     (TO-6) and role kinds hold by its sequence: roles, email and level all live here.
//   - record (acl.events.<t>.record.<type>.<id>): body, assignees, removal. Ids are never reused:
//     a removed record or principal keeps its state, and registering its id again is
//     already_exists.
//
// # Writes that span two aggregates
//
// Seat limits (TO-7) involve the tenant's count and the principal's level. SetAccessLevel and
// RemovePrincipal (of a principal holding a seat) therefore return two writes, the principal's
// event and the tenant's SeatChanged, which the service appends as one atomic batch expecting
// both sequences: of two changes racing for the last seat, the second fails on the tenant's
// sequence, is decided again on the new count and answers seat_limit_reached. CreateTenant
// writes the tenant (TenantCreated with the whole preset, SeatChanged of the first
// administrator) and that administrator (PrincipalRegistered, RoleAssigned of the preset's
// administrator role, AccessLevelSet full) in one batch too. Every other command writes one
// aggregate; all its events go in one message, so they are stored together or not at all.
//
// # Decide
//
// Decide(facts, command, now) returns []Write or an *Error. Guards run in the SPEC's order and
// the first that fails answers: the body (Validate: invalid_argument), the tenant's existence
// (not_found; names are the tenant's, so an unknown tenant answers before them), names
// (unknown_role for AssignRole, unknown_permission), the existence of what the command is about
// (not_found: principal, role, unit, record), the actor (forbidden), then the domain
// (already_exists, exclusive_role, feature_required, principal_kind_mismatch, email_required,
// seat_limit_reached, conflict). A command that changes nothing (assigning a role already held,
// joining a unit already joined, an update to the same body, ...) returns a Write without events:
// it is answered with the aggregate's sequence and stores nothing (and so its command id is not
// remembered).
//
// Authorization: the actor system may do everything, and only it CreateTenant and
// SetSubscription. Principal commands need user.manage_access allowed (Check) on the target
// principal's record (RegisterPrincipal: on the principal as it will be); other tenant commands
// need it at scope all after narrowing. Record commands need <type>.edit on the record:
// RegisterRecord on the record as it will be, UpdateRecord on the record as it is and as it will
// be. Records are judged by Check over the facts the caller gives: a caller whose facts do not
// enumerate records by client (the command service) does not authorize commands through
// implication rules, which derive view permissions. (Facts over indexes, the projections' read
// model, may implement CoveredRecords so that the rule reads only the records of the client that
// p's narrowed scopes cover; the answer is the one the full enumeration gives.) No escalation: Holds for every grant handed
// out (AssignRole: every grant of the role, the administrator role's being every permission of
// the policy at scope all) and no access level wider than the actor's own.
//
// DeleteRole of a held role is conflict. Who holds a role is not in the tenant (that would make
// every AssignRole write the tenant, serializing all of them on one subject); the facts answer
// it through the RoleHolders interface, which the command service implements by loading the
// tenant's principals for DeleteRole and DefineRole only. An AssignRole racing the deletion of
// the same role is not prevented (the residual risk of keeping role assignment off the tenant's
// sequence); its effect is bounded: the evaluator ignores an assigned role that no longer
// exists, and DefineRole refuses (conflict) to define a role id that someone still holds.
package aggregates
