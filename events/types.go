package events

// Event type names. They are part of the stored format: never rename one.
const (
	// Tenant aggregate (subject acl.events.<tenant>.tenant.<tenant>).
	TenantCreated         = "tenant_created"
	SubscriptionSet       = "subscription_set"
	UnitDefined           = "unit_defined"
	RoleDefined           = "role_defined"
	RoleDeleted           = "role_deleted"
	RolePermissionGranted = "role_permission_granted"
	RolePermissionRevoked = "role_permission_revoked"
	PolicySet             = "policy_set"
	SeatChanged           = "seat_changed"

	// Principal aggregate (subject acl.events.<tenant>.principal.<id>).
	PrincipalRegistered = "principal_registered"
	EmailSet            = "email_set"
	RoleAssigned        = "role_assigned"
	RoleRevoked         = "role_revoked"
	AccessLevelSet      = "access_level_set"
	PermissionGranted   = "permission_granted"
	PermissionDenied    = "permission_denied"
	PermissionCleared   = "permission_cleared"
	UnitJoined          = "unit_joined"
	UnitLeft            = "unit_left"
	PrincipalRemoved    = "principal_removed"

	// Record aggregate (subject acl.events.<tenant>.record.<type>.<id>).
	RecordRegistered = "record_registered"
	RecordUpdated    = "record_updated"
	RecordAssigned   = "record_assigned"
	RecordUnassigned = "record_unassigned"
	RecordRemoved    = "record_removed"
)

// AllTypes lists every event type constant; the round-trip test walks it.
var AllTypes = []string{
	TenantCreated, SubscriptionSet, UnitDefined, RoleDefined, RoleDeleted,
	RolePermissionGranted, RolePermissionRevoked, PolicySet, SeatChanged,
	PrincipalRegistered, EmailSet, RoleAssigned, RoleRevoked, AccessLevelSet,
	PermissionGranted, PermissionDenied, PermissionCleared, UnitJoined, UnitLeft, PrincipalRemoved,
	RecordRegistered, RecordUpdated, RecordAssigned, RecordUnassigned, RecordRemoved,
}

// Plain data shared by several events. These are the wire names of SPEC section 7.

// Grant is a permission at a scope.
type Grant struct {
	Permission string `json:"permission"`
	Scope      string `json:"scope"`
}

// UnitRef names a unit: kind location, team or area, and its id.
type UnitRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// RecordRef names a record by type and id.
type RecordRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Assignee is a principal's relation to a record ("assignee", "salesperson", ...).
type Assignee struct {
	Principal string `json:"principal"`
	Relation  string `json:"relation"`
}

// RoleDef is a role of a tenant's policy.
type RoleDef struct {
	Role            string   `json:"role"`
	Grants          []Grant  `json:"grants"`
	Exclusive       bool     `json:"exclusive"`
	RequiresFeature string   `json:"requires_feature"`
	PrincipalKinds  []string `json:"principal_kinds"`
}

// LimitedException keeps a permission's scope at access level limited for some kinds (TO-4a/b).
type LimitedException struct {
	Permission string   `json:"permission"`
	Kinds      []string `json:"kinds"`
}

// LinkRule: for principals of Kinds, being assigned to a record of type Via counts as being
// assigned to every record of type Type that links to it (TO-4d).
type LinkRule struct {
	Type  string   `json:"type"`
	Via   string   `json:"via"`
	Kinds []string `json:"kinds"`
}

// Implication: whoever is allowed Permission on a record is allowed Grants on the record named
// by its Field (only "client" for now; TO-4f).
type Implication struct {
	Permission string `json:"permission"`
	Field      string `json:"field"`
	Grants     string `json:"grants"`
}

// Policy is a tenant's policy (SPEC section 2), replaced whole by SetPolicy.
type Policy struct {
	Permissions []string           `json:"permissions"`
	Unscoped    []string           `json:"unscoped"`
	Limited     []LimitedException `json:"limited"`
	Links       []LinkRule         `json:"links"`
	Implies     []Implication      `json:"implies"`
}

// RecordBody is a record's whole description, as RegisterRecord and UpdateRecord carry it.
type RecordBody struct {
	Type      string      `json:"type"`
	ID        string      `json:"id"`
	Client    string      `json:"client,omitempty"`
	Units     []UnitRef   `json:"units"`
	Owner     string      `json:"owner,omitempty"`
	Assignees []Assignee  `json:"assignees"`
	Links     []RecordRef `json:"links"`
}

// Event data, one struct per type. Each knows its type name and current schema version.

// TenantCreatedV1 carries the whole preset, so history answers what the defaults were (PB-2).
type TenantCreatedV1 struct {
	Preset    string    `json:"preset"`
	AdminRole string    `json:"admin_role"`
	Policy    Policy    `json:"policy"`
	Roles     []RoleDef `json:"roles"`
}
type SubscriptionSetV1 struct {
	Features []string       `json:"features"`
	Seats    map[string]int `json:"seats"`
}
type UnitDefinedV1 struct {
	Unit UnitRef `json:"unit"`
}
type RoleDefinedV1 struct {
	RoleDef
}
type RoleDeletedV1 struct {
	Role string `json:"role"`
}
type RolePermissionGrantedV1 struct {
	Role  string `json:"role"`
	Grant Grant  `json:"grant"`
}
type RolePermissionRevokedV1 struct {
	Role  string `json:"role"`
	Grant Grant  `json:"grant"`
}
type PolicySetV1 struct {
	Policy Policy `json:"policy"`
}

// SeatChangedV1 is the tenant's side of an access level change or a removal: the seat count
// per level lives in the tenant aggregate so that racing changes serialize on its sequence.
type SeatChangedV1 struct {
	Principal string `json:"principal"`
	From      string `json:"from"`
	To        string `json:"to"` // "" when the principal was removed
}

type PrincipalRegisteredV1 struct {
	Principal string    `json:"principal"`
	Kind      string    `json:"kind"`
	Email     string    `json:"email,omitempty"`
	Client    string    `json:"client,omitempty"`
	Units     []UnitRef `json:"units"`
}
type EmailSetV1 struct {
	Email string `json:"email"`
}
type RoleAssignedV1 struct {
	Role string `json:"role"`
}
type RoleRevokedV1 struct {
	Role string `json:"role"`
}
type AccessLevelSetV1 struct {
	Level string `json:"level"`
	From  string `json:"from"`
}
type PermissionGrantedV1 struct {
	Grant Grant `json:"grant"`
}
type PermissionDeniedV1 struct {
	Permission string `json:"permission"`
}
type PermissionClearedV1 struct {
	Permission string `json:"permission"`
}
type UnitJoinedV1 struct {
	Unit UnitRef `json:"unit"`
}
type UnitLeftV1 struct {
	Unit UnitRef `json:"unit"`
}
type PrincipalRemovedV1 struct{}

type RecordRegisteredV1 struct {
	RecordBody
}
type RecordUpdatedV1 struct {
	RecordBody
}

// RecordAssignedV2 added Relation; schema 1 events (no relation) are upcast to "assignee".
type RecordAssignedV2 struct {
	Principal string `json:"principal"`
	Relation  string `json:"relation"`
}
type RecordUnassignedV2 struct {
	Principal string `json:"principal"`
	Relation  string `json:"relation"`
}
type RecordRemovedV1 struct{}
