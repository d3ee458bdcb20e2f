package aggregates

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/acl-es/acl/events"
)

// writtenBy names, for each event type, the one command whose decision writes it as its own
// event. Three events are also written beside another command's own: see companions.
var writtenBy = map[string]string{
	events.TenantCreated:         "CreateTenant",
	events.SubscriptionSet:       "SetSubscription",
	events.UnitDefined:           "DefineUnit",
	events.RoleDefined:           "DefineRole",
	events.RoleDeleted:           "DeleteRole",
	events.RolePermissionGranted: "GrantRolePermission",
	events.RolePermissionRevoked: "RevokeRolePermission",
	events.PolicySet:             "SetPolicy",
	events.PrincipalRegistered:   "RegisterPrincipal",
	events.EmailSet:              "SetEmail",
	events.RoleAssigned:          "AssignRole",
	events.RoleRevoked:           "RevokeRole",
	events.AccessLevelSet:        "SetAccessLevel",
	events.PermissionGranted:     "GrantPermission",
	events.PermissionDenied:      "DenyPermission",
	events.PermissionCleared:     "ClearPermission",
	events.UnitJoined:            "JoinUnit",
	events.UnitLeft:              "LeaveUnit",
	events.PrincipalRemoved:      "RemovePrincipal",
	events.RecordRegistered:      "RegisterRecord",
	events.RecordUpdated:         "UpdateRecord",
	events.RecordAssigned:        "AssignRecord",
	events.RecordUnassigned:      "UnassignRecord",
	events.RecordRemoved:         "RemoveRecord",
}

// companions are the events a command writes besides its own, in Decide's writes: the tenant's
// seat count beside a level change or a removal, and the first administrator beside a tenant.
var companions = map[string][]string{
	"CreateTenant":    {events.SeatChanged, events.PrincipalRegistered, events.RoleAssigned, events.AccessLevelSet},
	"SetAccessLevel":  {events.SeatChanged},
	"RemovePrincipal": {events.SeatChanged},
}

// CommandOf is the command that wrote evs, the events of one command (one command id) in the
// order they were stored: Decide read backwards, so that an export of events can be loaded
// again through every guard (aclctl import) instead of being appended as it is. The command
// carries the events' tenant, command id and actor; decided on the facts the events were
// decided on, it writes the same events (their ids, times, sequences and via are new).
//
// evs may be part of what the command wrote (a principal's history holds the principal's side
// of SetAccessLevel, not the tenant's seat count): any of its events names the command whole,
// except that CreateTenant needs both its tenant_created and its principal_registered. The
// command is named by the events' cause when they have one (the command service records the
// command name there), else by their types. Events that no single command writes together, or
// a tenant_created whose preset differs from the preset of that name today (re-creating it
// would make another tenant), are refused with invalid_argument.
func CommandOf(evs []events.Envelope) (Command, error) {
	if len(evs) == 0 {
		return nil, Errorf(CodeInvalidArgument, "no events")
	}
	first := evs[0]
	datas := make([]events.Data, len(evs))
	for i, e := range evs {
		if e.CommandID != first.CommandID || e.Tenant != first.Tenant || e.Actor != first.Actor || e.Cause != first.Cause {
			return nil, Errorf(CodeInvalidArgument, "events %s and %s are of one command but differ in command_id, tenant, actor or cause", first.ID, e.ID)
		}
		if writtenBy[e.Type] == "" && e.Type != events.SeatChanged {
			return nil, Errorf(CodeInvalidArgument, "event %s: unknown event type %q", e.ID, e.Type)
		}
		if want := eventKind(e.Type); e.Aggregate.Kind != want {
			return nil, Errorf(CodeInvalidArgument, "event %s: a %s event of a %s aggregate; it belongs to a %s", e.ID, e.Type, e.Aggregate.Kind, want)
		}
		d, err := events.Decode(e)
		if err != nil {
			return nil, &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
		}
		datas[i] = d
	}
	name := first.Cause
	if name == "" {
		name = nameOf(evs, datas)
	}
	if NewCommand(name) == nil {
		return nil, Errorf(CodeInvalidArgument, "events of command %s: cause %q is no command", first.CommandID, name)
	}
	own := map[string]int{} // event type -> index in evs
	for i, e := range evs {
		if _, twice := own[e.Type]; twice || (writtenBy[e.Type] != name && !slices.Contains(companions[name], e.Type)) {
			return nil, Errorf(CodeInvalidArgument, "command %s (%s) cannot have written its events %v", first.CommandID, name, eventTypes(evs))
		}
		own[e.Type] = i
	}
	base := CommandBase{CommandID: first.CommandID, Actor: first.Actor, Tenant: first.Tenant}
	data := func(typ string) (events.Data, events.Envelope, bool) {
		i, ok := own[typ]
		if !ok {
			return nil, events.Envelope{}, false
		}
		return datas[i], evs[i], true
	}
	switch name {
	case "CreateTenant":
		return createTenantOf(base, data)
	case "SetAccessLevel":
		if d, e, ok := data(events.AccessLevelSet); ok {
			return &SetAccessLevel{CommandBase: base, Principal: e.Aggregate.ID, Level: d.(events.AccessLevelSetV1).Level}, nil
		}
		d, _, _ := data(events.SeatChanged)
		s := d.(events.SeatChangedV1)
		if s.To == "" {
			return nil, Errorf(CodeInvalidArgument, "command %s: SetAccessLevel with a seat_changed of a removal", first.CommandID)
		}
		return &SetAccessLevel{CommandBase: base, Principal: s.Principal, Level: s.To}, nil
	case "RemovePrincipal":
		if _, e, ok := data(events.PrincipalRemoved); ok {
			return &RemovePrincipal{CommandBase: base, Principal: e.Aggregate.ID}, nil
		}
		d, _, _ := data(events.SeatChanged)
		return &RemovePrincipal{CommandBase: base, Principal: d.(events.SeatChangedV1).Principal}, nil
	}
	// Every other command writes one event, its own.
	typ := evs[0].Type
	if len(evs) != 1 || writtenBy[typ] != name {
		return nil, Errorf(CodeInvalidArgument, "command %s (%s) cannot have written its events %v", first.CommandID, name, eventTypes(evs))
	}
	if cmd := singleCommandOf(base, evs[0], datas[0]); cmd != nil {
		return cmd, nil
	}
	return nil, Errorf(CodeInternal, "no command for event type %s", typ) // writtenBy and singleCommandOf name the same types
}

// nameOf names the command of events without a cause, by their types.
func nameOf(evs []events.Envelope, datas []events.Data) string {
	if slices.ContainsFunc(evs, func(e events.Envelope) bool { return e.Type == events.TenantCreated }) {
		return "CreateTenant"
	}
	for _, e := range evs {
		if e.Type != events.SeatChanged {
			return writtenBy[e.Type]
		}
	}
	if datas[0].(events.SeatChangedV1).To == "" {
		return "RemovePrincipal"
	}
	return "SetAccessLevel"
}

// eventKind is the kind of aggregate an event type belongs to.
func eventKind(typ string) string {
	switch writtenBy[typ] {
	case "CreateTenant", "SetSubscription", "DefineUnit", "DefineRole", "DeleteRole", "GrantRolePermission", "RevokeRolePermission", "SetPolicy":
		return events.KindTenant
	case "RegisterRecord", "UpdateRecord", "AssignRecord", "UnassignRecord", "RemoveRecord":
		return events.KindRecord
	case "":
		return events.KindTenant // seat_changed
	}
	return events.KindPrincipal
}

func eventTypes(evs []events.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// createTenantOf is CreateTenant from its tenant_created (the preset) and principal_registered
// (the first administrator).
func createTenantOf(base CommandBase, data func(string) (events.Data, events.Envelope, bool)) (Command, error) {
	td, _, ok := data(events.TenantCreated)
	pd, _, ok2 := data(events.PrincipalRegistered)
	if !ok || !ok2 {
		return nil, Errorf(CodeInvalidArgument, "command %s: CreateTenant needs its tenant_created and its administrator's principal_registered; an export of a principal's or record's history may lack them", base.CommandID)
	}
	created := td.(events.TenantCreatedV1)
	preset, err := Preset(created.Preset)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "command %s: %s", base.CommandID, err.(*Error).Message)
	}
	was, _ := json.Marshal(created)
	now, _ := json.Marshal(preset)
	if !bytes.Equal(was, now) {
		return nil, Errorf(CodeInvalidArgument, "command %s: tenant %s was created with a preset %s that differs from today's (its roles or policy changed since); CreateTenant would make another tenant",
			base.CommandID, base.Tenant, created.Preset)
	}
	p := pd.(events.PrincipalRegisteredV1)
	admin := RegisterPrincipal{Principal: p.Principal, Kind: p.Kind, Email: p.Email, Client: p.Client, Units: p.Units}
	return &CreateTenant{CommandBase: base, Preset: created.Preset, Admin: admin}, nil
}

// singleCommandOf is the command of a one-event command; nil for a type it does not know.
func singleCommandOf(base CommandBase, e events.Envelope, d events.Data) Command {
	principal, rec := e.Aggregate.ID, events.RecordRef{Type: e.Aggregate.Type, ID: e.Aggregate.ID}
	switch d := d.(type) {
	case events.SubscriptionSetV1:
		features := slices.Clone(d.Features)
		if features == nil {
			features = []string{}
		}
		return &SetSubscription{CommandBase: base, Features: &features, Seats: d.Seats}
	case events.UnitDefinedV1:
		return &DefineUnit{CommandBase: base, Unit: d.Unit}
	case events.RoleDefinedV1:
		return &DefineRole{CommandBase: base, Role: d.Role, Grants: d.Grants, Exclusive: d.Exclusive,
			RequiresFeature: d.RequiresFeature, PrincipalKinds: d.PrincipalKinds}
	case events.RoleDeletedV1:
		return &DeleteRole{CommandBase: base, Role: d.Role}
	case events.RolePermissionGrantedV1:
		return &GrantRolePermission{CommandBase: base, Role: d.Role, Permission: d.Grant.Permission, Scope: d.Grant.Scope}
	case events.RolePermissionRevokedV1:
		return &RevokeRolePermission{CommandBase: base, Role: d.Role, Permission: d.Grant.Permission, Scope: d.Grant.Scope}
	case events.PolicySetV1:
		return &SetPolicy{CommandBase: base, Policy: &d.Policy}
	case events.PrincipalRegisteredV1:
		return &RegisterPrincipal{CommandBase: base, Principal: d.Principal, Kind: d.Kind, Email: d.Email, Client: d.Client, Units: d.Units}
	case events.EmailSetV1:
		return &SetEmail{CommandBase: base, Principal: principal, Email: &d.Email}
	case events.RoleAssignedV1:
		return &AssignRole{CommandBase: base, Principal: principal, Role: d.Role}
	case events.RoleRevokedV1:
		return &RevokeRole{CommandBase: base, Principal: principal, Role: d.Role}
	case events.PermissionGrantedV1:
		return &GrantPermission{CommandBase: base, Principal: principal, Permission: d.Grant.Permission, Scope: d.Grant.Scope}
	case events.PermissionDeniedV1:
		return &DenyPermission{CommandBase: base, Principal: principal, Permission: d.Permission}
	case events.PermissionClearedV1:
		return &ClearPermission{CommandBase: base, Principal: principal, Permission: d.Permission}
	case events.UnitJoinedV1:
		return &JoinUnit{CommandBase: base, Principal: principal, Unit: d.Unit}
	case events.UnitLeftV1:
		return &LeaveUnit{CommandBase: base, Principal: principal, Unit: d.Unit}
	case events.RecordRegisteredV1:
		return &RegisterRecord{CommandBase: base, RecordBody: d.RecordBody}
	case events.RecordUpdatedV1:
		return &UpdateRecord{CommandBase: base, RecordBody: d.RecordBody}
	case events.RecordAssignedV2:
		return &AssignRecord{CommandBase: base, Type: rec.Type, ID: rec.ID, Principal: d.Principal, Relation: d.Relation}
	case events.RecordUnassignedV2:
		return &UnassignRecord{CommandBase: base, Type: rec.Type, ID: rec.ID, Principal: d.Principal, Relation: d.Relation}
	case events.RecordRemovedV1:
		return &RemoveRecord{CommandBase: base, Type: rec.Type, ID: rec.ID}
	}
	return nil
}
