package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// Record commands need <type>.edit on the record. RegisterRecord is judged on the record as it
// will be; UpdateRecord both on the record as it is and as it will be, so that an actor can
// neither change a record it may not edit nor move one where it could not have registered it.

// normalizedBody is the body as a record will hold it: relations defaulted, units and assignees
// sorted without duplicates, lists never nil (so an update that changes nothing is recognized).
func normalizedBody(b events.RecordBody) events.RecordBody {
	b.Units = sortedUnits(b.Units)
	b.Assignees = sortedAssignees(b.Assignees)
	b.Links = slices.Clone(b.Links)
	if b.Units == nil {
		b.Units = []events.UnitRef{}
	}
	if b.Assignees == nil {
		b.Assignees = []events.Assignee{}
	}
	if b.Links == nil {
		b.Links = []events.RecordRef{}
	}
	return b
}

// recordAfter is the record as body makes it, built with Apply so that it is exactly what the
// stored event will produce (a client record is its own client, for instance). It is only
// judged (a permission check's overlay, sameBody), never kept, so it is built without the maps
// of a kept state: no command to remember (the envelope applied has none), and as provenance
// only old's body event; every other lookup gives "", the id of the envelope applied, as
// before. Every record a command registers or updates was built twice with them.
func recordAfter(old *Record, b events.RecordBody) *Record {
	r := &Record{Type: b.Type, ID: b.ID}
	r.Apply(events.Envelope{}, events.RecordRegisteredV1{RecordBody: b})
	if old != nil {
		r.Seq = old.Seq
		if body := old.Prov["body"]; body != "" {
			r.Prov = map[string]string{"body": body}
		}
	}
	return r
}

func decideRegisterRecord(f Facts, c *RegisterRecord) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if err := definedUnits(t, c.Units); err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	body := normalizedBody(c.RecordBody)
	old := f.Record(c.Type, c.ID)
	next := recordAfter(nil, body)
	if err := a.allowed(overlay{Facts: f, rec: next}, editPermission(c.Type), events.RecordRef{Type: c.Type, ID: c.ID}); err != nil {
		return nil, err
	}
	if old != nil && old.Exists {
		if old.Removed {
			return nil, Errorf(CodeAlreadyExists, "%s %s was removed, and record ids are never reused; choose another id", c.Type, c.ID)
		}
		return nil, Errorf(CodeAlreadyExists, "%s %s already exists; change it with UpdateRecord", c.Type, c.ID)
	}
	return []Write{write(events.RecordAggregate(c.Type, c.ID), recordSeq(old), events.RecordRegisteredV1{RecordBody: body})}, nil
}

func decideUpdateRecord(f Facts, c *UpdateRecord) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	if err := definedUnits(t, c.Units); err != nil {
		return nil, err
	}
	old, err := activeRecord(f, c.Type, c.ID)
	if err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	ref := events.RecordRef{Type: c.Type, ID: c.ID}
	perm := editPermission(c.Type)
	if err := a.allowed(f, perm, ref); err != nil {
		return nil, err
	}
	body := normalizedBody(c.RecordBody)
	next := recordAfter(old, body)
	if err := a.allowed(overlay{Facts: f, rec: next}, perm, ref); err != nil {
		return nil, prefixMessage(err, "after the update: ")
	}
	agg := events.RecordAggregate(c.Type, c.ID)
	if sameBody(old, next) {
		return unchanged(agg, old.Seq), nil
	}
	return []Write{write(agg, old.Seq, events.RecordUpdatedV1{RecordBody: body})}, nil
}

// sameBody reports whether an update would leave the record as it is.
func sameBody(a, b *Record) bool {
	return a.Client == b.Client && a.Owner == b.Owner && slices.Equal(a.Units, b.Units) &&
		slices.Equal(a.Assignees, b.Assignees) && slices.Equal(a.Links, b.Links)
}

func decideAssignment(f Facts, b *CommandBase, typ, id string, as events.Assignee, assign bool) ([]Write, error) {
	if as.Relation == "" {
		as.Relation = events.DefaultRelation
	}
	t, err := existingTenant(f, b)
	if err != nil {
		return nil, err
	}
	r, err := activeRecord(f, typ, id)
	if err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, b.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.allowed(f, editPermission(typ), events.RecordRef{Type: typ, ID: id}); err != nil {
		return nil, err
	}
	agg := events.RecordAggregate(typ, id)
	_, has := slices.BinarySearchFunc(r.Assignees, as, assigneeLess)
	switch {
	case assign && !has:
		return []Write{write(agg, r.Seq, events.RecordAssignedV2{Principal: as.Principal, Relation: as.Relation})}, nil
	case !assign && has:
		return []Write{write(agg, r.Seq, events.RecordUnassignedV2{Principal: as.Principal, Relation: as.Relation})}, nil
	}
	return unchanged(agg, r.Seq), nil
}

func decideRemoveRecord(f Facts, c *RemoveRecord) ([]Write, error) {
	t, err := existingTenant(f, &c.CommandBase)
	if err != nil {
		return nil, err
	}
	r, err := activeRecord(f, c.Type, c.ID)
	if err != nil {
		return nil, err
	}
	a, err := actorOf(f, t, c.Actor)
	if err != nil {
		return nil, err
	}
	if err := a.allowed(f, editPermission(c.Type), events.RecordRef{Type: c.Type, ID: c.ID}); err != nil {
		return nil, err
	}
	return []Write{write(events.RecordAggregate(c.Type, c.ID), r.Seq, events.RecordRemovedV1{})}, nil
}

// activeRecord is the existence guard of a record a command is about.
func activeRecord(f Facts, typ, id string) (*Record, error) {
	r := f.Record(typ, id)
	switch {
	case r == nil || !r.Exists:
		return nil, Errorf(CodeNotFound, "%s %s is not registered", typ, id)
	case r.Removed:
		return nil, Errorf(CodeNotFound, "%s %s was removed", typ, id)
	}
	return r, nil
}
