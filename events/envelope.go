package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Aggregate kinds.
const (
	KindTenant    = "tenant"
	KindPrincipal = "principal"
	KindRecord    = "record"
)

// AggregateRef names the aggregate an event belongs to. Type is set for records only.
type AggregateRef struct {
	Kind string `json:"kind"`
	Type string `json:"type,omitempty"`
	ID   string `json:"id"`
}

// Envelope is one stored event (SPEC section 6). Seq is the stream sequence of the message that
// carried it; it is filled in when read and never written.
type Envelope struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	Schema    int          `json:"schema"`
	Tenant    string       `json:"tenant"`
	Aggregate AggregateRef `json:"aggregate"`
	Actor     string       `json:"actor"`
	// Via is the caller identity whose request wrote the event (SPEC section 5, "Callers"):
	// the actor says for whom, via which service. Events written before identities have none.
	Via       string          `json:"via,omitempty"`
	CommandID string          `json:"command_id"`
	Cause     string          `json:"cause,omitempty"`
	Time      time.Time       `json:"time"`
	Data      json.RawMessage `json:"data"`
	Seq       uint64          `json:"seq,omitempty"`
	// CommandHash is a digest of the command body that produced the event, so that a command id
	// reused with another body is recognised as a conflict long after the duplicate window.
	CommandHash string `json:"command_hash,omitempty"`
}

// Data is the payload of one event type.
type Data interface {
	EventType() string
	SchemaVersion() int
}

// ErrInvalid is returned for an envelope or subject that must not be stored.
var ErrInvalid = errors.New("events: invalid")

// Meta is what every event of one command shares.
type Meta struct {
	Tenant      string
	Aggregate   AggregateRef
	Actor       string
	Via         string
	CommandID   string
	CommandHash string
	Cause       string
	Time        time.Time
}

// New builds an envelope with a fresh UUIDv7 id.
func New(m Meta, d Data) (Envelope, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("events: new id: %w", err)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return Envelope{}, fmt.Errorf("events: encode %s: %w", d.EventType(), err)
	}
	return Envelope{
		ID: id.String(), Type: d.EventType(), Schema: d.SchemaVersion(), Tenant: m.Tenant,
		Aggregate: m.Aggregate, Actor: m.Actor, Via: m.Via, CommandID: m.CommandID, CommandHash: m.CommandHash,
		Cause: m.Cause, Time: m.Time.UTC(), Data: raw,
	}, nil
}

// Validate checks the fields every stored envelope must have.
func (e Envelope) Validate() error {
	_, err := e.validate()
	return err
}

// validate is Validate, and returns the data as Decode gives it: an append validates every
// envelope it sends by decoding its data, and the command path then applies that data to
// the aggregate's state (Pending.Data) instead of decoding it a second time.
func (e Envelope) validate() (Data, error) {
	switch {
	case e.ID == "":
		return nil, fmt.Errorf("%w: envelope without id", ErrInvalid)
	case e.Type == "":
		return nil, fmt.Errorf("%w: envelope %s without type", ErrInvalid, e.ID)
	case e.Tenant == "":
		return nil, fmt.Errorf("%w: envelope %s without tenant", ErrInvalid, e.ID)
	case e.Aggregate.Kind == "" || e.Aggregate.ID == "":
		return nil, fmt.Errorf("%w: envelope %s without aggregate", ErrInvalid, e.ID)
	case e.Actor == "":
		return nil, fmt.Errorf("%w: envelope %s without actor", ErrInvalid, e.ID)
	case e.CommandID == "":
		return nil, fmt.Errorf("%w: envelope %s without command_id", ErrInvalid, e.ID)
	case e.Time.IsZero():
		return nil, fmt.Errorf("%w: envelope %s without time", ErrInvalid, e.ID)
	case len(e.Data) == 0:
		return nil, fmt.Errorf("%w: envelope %s without data", ErrInvalid, e.ID)
	}
	return Decode(e)
}

func decode[T Data](e Envelope) (Data, error) {
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return nil, fmt.Errorf("%w: %s event %s: %v", ErrInvalid, e.Type, e.ID, err)
	}
	return v, nil
}

// Decode returns the typed data of an envelope, upcasting old schema versions. It is a switch,
// not a registry: adding a type without a case here fails the round-trip test. The data of the
// frequent types is decoded by fastData when it has the shape json.Marshal gives it
// (fastdata.go), else by encoding/json; both give the same value.
func Decode(e Envelope) (Data, error) {
	if d, ok := fastData(e.Type, e.Data); ok {
		return upcast(e.Schema, d), nil
	}
	d, err := decodeStd(e)
	if err != nil {
		return nil, err
	}
	return upcast(e.Schema, d), nil
}

// decodeStd decodes the data of an envelope with encoding/json, without upcasting.
func decodeStd(e Envelope) (Data, error) {
	switch e.Type {
	case TenantCreated:
		return decode[TenantCreatedV1](e)
	case SubscriptionSet:
		return decode[SubscriptionSetV1](e)
	case UnitDefined:
		return decode[UnitDefinedV1](e)
	case RoleDefined:
		return decode[RoleDefinedV1](e)
	case RoleDeleted:
		return decode[RoleDeletedV1](e)
	case RolePermissionGranted:
		return decode[RolePermissionGrantedV1](e)
	case RolePermissionRevoked:
		return decode[RolePermissionRevokedV1](e)
	case PolicySet:
		return decode[PolicySetV1](e)
	case SeatChanged:
		return decode[SeatChangedV1](e)
	case PrincipalRegistered:
		return decode[PrincipalRegisteredV1](e)
	case EmailSet:
		return decode[EmailSetV1](e)
	case RoleAssigned:
		return decode[RoleAssignedV1](e)
	case RoleRevoked:
		return decode[RoleRevokedV1](e)
	case AccessLevelSet:
		return decode[AccessLevelSetV1](e)
	case PermissionGranted:
		return decode[PermissionGrantedV1](e)
	case PermissionDenied:
		return decode[PermissionDeniedV1](e)
	case PermissionCleared:
		return decode[PermissionClearedV1](e)
	case UnitJoined:
		return decode[UnitJoinedV1](e)
	case UnitLeft:
		return decode[UnitLeftV1](e)
	case PrincipalRemoved:
		return decode[PrincipalRemovedV1](e)
	case RecordRegistered:
		return decode[RecordRegisteredV1](e)
	case RecordUpdated:
		return decode[RecordUpdatedV1](e)
	case RecordAssigned:
		return decode[RecordAssignedV2](e)
	case RecordUnassigned:
		return decode[RecordUnassignedV2](e)
	case RecordRemoved:
		return decode[RecordRemovedV1](e)
	default:
		return nil, fmt.Errorf("%w: unknown event type %q", ErrInvalid, e.Type)
	}
}

// upcast turns data decoded from an old schema version into the current one.
func upcast(schema int, d Data) Data {
	if schema >= 2 {
		return d
	}
	switch v := d.(type) {
	case RecordAssignedV2:
		return upcastAssigned(v)
	case RecordUnassignedV2:
		if v.Relation == "" {
			v.Relation = DefaultRelation
		}
		return v
	}
	return d
}

// DefaultRelation is the relation of an assignment that names none.
const DefaultRelation = "assignee"

// upcastAssigned: schema 1 of record_assigned had no relation; it meant "assignee".
func upcastAssigned(v RecordAssignedV2) Data {
	if v.Relation == "" {
		v.Relation = DefaultRelation
	}
	return v
}

func (TenantCreatedV1) EventType() string         { return TenantCreated }
func (SubscriptionSetV1) EventType() string       { return SubscriptionSet }
func (UnitDefinedV1) EventType() string           { return UnitDefined }
func (RoleDefinedV1) EventType() string           { return RoleDefined }
func (RoleDeletedV1) EventType() string           { return RoleDeleted }
func (RolePermissionGrantedV1) EventType() string { return RolePermissionGranted }
func (RolePermissionRevokedV1) EventType() string { return RolePermissionRevoked }
func (PolicySetV1) EventType() string             { return PolicySet }
func (SeatChangedV1) EventType() string           { return SeatChanged }
func (PrincipalRegisteredV1) EventType() string   { return PrincipalRegistered }
func (EmailSetV1) EventType() string              { return EmailSet }
func (RoleAssignedV1) EventType() string          { return RoleAssigned }
func (RoleRevokedV1) EventType() string           { return RoleRevoked }
func (AccessLevelSetV1) EventType() string        { return AccessLevelSet }
func (PermissionGrantedV1) EventType() string     { return PermissionGranted }
func (PermissionDeniedV1) EventType() string      { return PermissionDenied }
func (PermissionClearedV1) EventType() string     { return PermissionCleared }
func (UnitJoinedV1) EventType() string            { return UnitJoined }
func (UnitLeftV1) EventType() string              { return UnitLeft }
func (PrincipalRemovedV1) EventType() string      { return PrincipalRemoved }
func (RecordRegisteredV1) EventType() string      { return RecordRegistered }
func (RecordUpdatedV1) EventType() string         { return RecordUpdated }
func (RecordAssignedV2) EventType() string        { return RecordAssigned }
func (RecordUnassignedV2) EventType() string      { return RecordUnassigned }
func (RecordRemovedV1) EventType() string         { return RecordRemoved }

func (TenantCreatedV1) SchemaVersion() int         { return 1 }
func (SubscriptionSetV1) SchemaVersion() int       { return 1 }
func (UnitDefinedV1) SchemaVersion() int           { return 1 }
func (RoleDefinedV1) SchemaVersion() int           { return 1 }
func (RoleDeletedV1) SchemaVersion() int           { return 1 }
func (RolePermissionGrantedV1) SchemaVersion() int { return 1 }
func (RolePermissionRevokedV1) SchemaVersion() int { return 1 }
func (PolicySetV1) SchemaVersion() int             { return 1 }
func (SeatChangedV1) SchemaVersion() int           { return 1 }
func (PrincipalRegisteredV1) SchemaVersion() int   { return 1 }
func (EmailSetV1) SchemaVersion() int              { return 1 }
func (RoleAssignedV1) SchemaVersion() int          { return 1 }
func (RoleRevokedV1) SchemaVersion() int           { return 1 }
func (AccessLevelSetV1) SchemaVersion() int        { return 1 }
func (PermissionGrantedV1) SchemaVersion() int     { return 1 }
func (PermissionDeniedV1) SchemaVersion() int      { return 1 }
func (PermissionClearedV1) SchemaVersion() int     { return 1 }
func (UnitJoinedV1) SchemaVersion() int            { return 1 }
func (UnitLeftV1) SchemaVersion() int              { return 1 }
func (PrincipalRemovedV1) SchemaVersion() int      { return 1 }
func (RecordRegisteredV1) SchemaVersion() int      { return 1 }
func (RecordUpdatedV1) SchemaVersion() int         { return 1 }
func (RecordAssignedV2) SchemaVersion() int        { return 2 }
func (RecordUnassignedV2) SchemaVersion() int      { return 2 }
func (RecordRemovedV1) SchemaVersion() int         { return 1 }
