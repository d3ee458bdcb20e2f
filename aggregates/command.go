package aggregates

import "github.com/acl-es/acl/events"

// Command is one command of SPEC section 5. The JSON names are the wire format of SPEC section 7
// (a contract with outside clients: never rename them).
type Command interface {
	// Name is the command name, the last token of its subject (acl.commands.<tenant>.<Name>).
	Name() string
	Base() *CommandBase
}

// CommandBase holds what every command carries. Tenant comes from the subject, not the body.
type CommandBase struct {
	CommandID string `json:"command_id"`
	Actor     string `json:"actor"`
	// DryRun asks what the command would do (SPEC section 8): every guard runs, nothing is
	// written and the command id is not remembered.
	DryRun bool   `json:"dry_run,omitempty"`
	Tenant string `json:"-"`
	// Via is the caller identity the command came through (set by the command service from
	// the request's credentials, never read from the body); its events record it.
	Via string `json:"-"`
}

func (b *CommandBase) Base() *CommandBase { return b }

// Tenant commands.

type CreateTenant struct {
	CommandBase
	Preset string            `json:"preset"`
	Admin  RegisterPrincipal `json:"admin"`
}
type SetSubscription struct {
	CommandBase
	Features *[]string      `json:"features"` // required: pointer tells missing from empty
	Seats    map[string]int `json:"seats"`
}
type DefineUnit struct {
	CommandBase
	Unit events.UnitRef `json:"unit"`
}
type DefineRole struct {
	CommandBase
	Role            string         `json:"role"`
	Grants          []events.Grant `json:"grants"`
	Exclusive       bool           `json:"exclusive"`
	RequiresFeature string         `json:"requires_feature"`
	PrincipalKinds  []string       `json:"principal_kinds"`
}
type DeleteRole struct {
	CommandBase
	Role string `json:"role"`
}
type GrantRolePermission struct {
	CommandBase
	Role       string `json:"role"`
	Permission string `json:"permission"`
	Scope      string `json:"scope"`
}
type RevokeRolePermission struct {
	CommandBase
	Role       string `json:"role"`
	Permission string `json:"permission"`
	Scope      string `json:"scope"`
}
type SetPolicy struct {
	CommandBase
	Policy *events.Policy `json:"policy"`
}

// Principal commands.

// RegisterPrincipal also serves as CreateTenant's admin body (whose command_id and actor are
// ignored).
type RegisterPrincipal struct {
	CommandBase
	Principal string           `json:"principal"`
	Kind      string           `json:"kind"`
	Email     string           `json:"email"`
	Client    string           `json:"client"`
	Units     []events.UnitRef `json:"units"`
}
type SetEmail struct {
	CommandBase
	Principal string  `json:"principal"`
	Email     *string `json:"email"` // required; "" clears it
}
type AssignRole struct {
	CommandBase
	Principal string `json:"principal"`
	Role      string `json:"role"`
}
type RevokeRole struct {
	CommandBase
	Principal string `json:"principal"`
	Role      string `json:"role"`
}
type SetAccessLevel struct {
	CommandBase
	Principal string `json:"principal"`
	Level     string `json:"level"`
}
type GrantPermission struct {
	CommandBase
	Principal  string `json:"principal"`
	Permission string `json:"permission"`
	Scope      string `json:"scope"`
}
type DenyPermission struct {
	CommandBase
	Principal  string `json:"principal"`
	Permission string `json:"permission"`
}
type ClearPermission struct {
	CommandBase
	Principal  string `json:"principal"`
	Permission string `json:"permission"`
}
type JoinUnit struct {
	CommandBase
	Principal string         `json:"principal"`
	Unit      events.UnitRef `json:"unit"`
}
type LeaveUnit struct {
	CommandBase
	Principal string         `json:"principal"`
	Unit      events.UnitRef `json:"unit"`
}
type RemovePrincipal struct {
	CommandBase
	Principal string `json:"principal"`
}

// Record commands.

type RegisterRecord struct {
	CommandBase
	events.RecordBody
}
type UpdateRecord struct {
	CommandBase
	events.RecordBody
}
type AssignRecord struct {
	CommandBase
	Type      string `json:"type"`
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Relation  string `json:"relation"`
}
type UnassignRecord struct {
	CommandBase
	Type      string `json:"type"`
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Relation  string `json:"relation"`
}
type RemoveRecord struct {
	CommandBase
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (*CreateTenant) Name() string         { return "CreateTenant" }
func (*SetSubscription) Name() string      { return "SetSubscription" }
func (*DefineUnit) Name() string           { return "DefineUnit" }
func (*DefineRole) Name() string           { return "DefineRole" }
func (*DeleteRole) Name() string           { return "DeleteRole" }
func (*GrantRolePermission) Name() string  { return "GrantRolePermission" }
func (*RevokeRolePermission) Name() string { return "RevokeRolePermission" }
func (*SetPolicy) Name() string            { return "SetPolicy" }
func (*RegisterPrincipal) Name() string    { return "RegisterPrincipal" }
func (*SetEmail) Name() string             { return "SetEmail" }
func (*AssignRole) Name() string           { return "AssignRole" }
func (*RevokeRole) Name() string           { return "RevokeRole" }
func (*SetAccessLevel) Name() string       { return "SetAccessLevel" }
func (*GrantPermission) Name() string      { return "GrantPermission" }
func (*DenyPermission) Name() string       { return "DenyPermission" }
func (*ClearPermission) Name() string      { return "ClearPermission" }
func (*JoinUnit) Name() string             { return "JoinUnit" }
func (*LeaveUnit) Name() string            { return "LeaveUnit" }
func (*RemovePrincipal) Name() string      { return "RemovePrincipal" }
func (*RegisterRecord) Name() string       { return "RegisterRecord" }
func (*UpdateRecord) Name() string         { return "UpdateRecord" }
func (*AssignRecord) Name() string         { return "AssignRecord" }
func (*UnassignRecord) Name() string       { return "UnassignRecord" }
func (*RemoveRecord) Name() string         { return "RemoveRecord" }

// NewCommand returns an empty command of the given name, or nil for an unknown name.
func NewCommand(name string) Command {
	switch name {
	case "CreateTenant":
		return &CreateTenant{}
	case "SetSubscription":
		return &SetSubscription{}
	case "DefineUnit":
		return &DefineUnit{}
	case "DefineRole":
		return &DefineRole{}
	case "DeleteRole":
		return &DeleteRole{}
	case "GrantRolePermission":
		return &GrantRolePermission{}
	case "RevokeRolePermission":
		return &RevokeRolePermission{}
	case "SetPolicy":
		return &SetPolicy{}
	case "RegisterPrincipal":
		return &RegisterPrincipal{}
	case "SetEmail":
		return &SetEmail{}
	case "AssignRole":
		return &AssignRole{}
	case "RevokeRole":
		return &RevokeRole{}
	case "SetAccessLevel":
		return &SetAccessLevel{}
	case "GrantPermission":
		return &GrantPermission{}
	case "DenyPermission":
		return &DenyPermission{}
	case "ClearPermission":
		return &ClearPermission{}
	case "JoinUnit":
		return &JoinUnit{}
	case "LeaveUnit":
		return &LeaveUnit{}
	case "RemovePrincipal":
		return &RemovePrincipal{}
	case "RegisterRecord":
		return &RegisterRecord{}
	case "UpdateRecord":
		return &UpdateRecord{}
	case "AssignRecord":
		return &AssignRecord{}
	case "UnassignRecord":
		return &UnassignRecord{}
	case "RemoveRecord":
		return &RemoveRecord{}
	}
	return nil
}

// CommandNames lists every command name.
var CommandNames = []string{
	"CreateTenant", "SetSubscription", "DefineUnit", "DefineRole", "DeleteRole",
	"GrantRolePermission", "RevokeRolePermission", "SetPolicy",
	"RegisterPrincipal", "SetEmail", "AssignRole", "RevokeRole", "SetAccessLevel",
	"GrantPermission", "DenyPermission", "ClearPermission", "JoinUnit", "LeaveUnit", "RemovePrincipal",
	"RegisterRecord", "UpdateRecord", "AssignRecord", "UnassignRecord", "RemoveRecord",
}
