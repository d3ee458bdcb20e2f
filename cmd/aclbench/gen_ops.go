package main

import (
	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Op is command i of the steady-state mix that the commands workload sends to a loaded tenant:
// what a business does all day. run tells runs apart (new record ids, new command ids), so a
// second run against the same server creates new records instead of repeating the first.
//
//	45% AssignRecord    an existing record gets another assignee
//	15% UpdateRecord    an existing record is rewritten (units, assignees, links replaced)
//	25% RegisterRecord  a new record
//	10% GrantPermission a direct grant to a principal
//	 5% JoinUnit        a principal joins a team
func (t *Tenant) Op(run string, i int) aggregates.Command {
	r := rngFor(t.seed, t.ID+"/"+run, streamOp, i)
	b := aggregates.CommandBase{CommandID: commandID(t.seed, t.ID, "ops/"+run, i, 0), Actor: Admin, Tenant: t.ID}
	n := r.IntN(100)
	if t.Records == 0 {
		n = 60 // only new records make sense
	}
	switch {
	case n < 45:
		idx := r.IntN(t.Records)
		return &aggregates.AssignRecord{CommandBase: b, Type: t.recordType(idx), ID: recordID(t.recordType(idx), idx),
			Principal: t.worker(r), Relation: events.DefaultRelation}
	case n < 60:
		idx := r.IntN(t.Records)
		body := t.Record(idx)
		body.Assignees = append(body.Assignees, events.Assignee{Principal: t.worker(r), Relation: events.DefaultRelation})
		return &aggregates.UpdateRecord{CommandBase: b, RecordBody: body}
	case n < 85:
		body := t.Record(r.IntN(max(t.Records, 1)))
		body.ID = body.Type + "-" + run + "-" + itoa(i)
		return &aggregates.RegisterRecord{CommandBase: b, RecordBody: body}
	case n < 95:
		return &aggregates.GrantPermission{CommandBase: b, Principal: t.worker(r), Permission: t.prof.grant, Scope: aggregates.ScopeAll}
	default:
		return &aggregates.JoinUnit{CommandBase: b, Principal: t.worker(r), Unit: t.unit(aggregates.UnitTeam, r.IntN(1<<30))}
	}
}

func itoa(i int) string { return string(appendUint(nil, uint64(i))) }
