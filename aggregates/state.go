package aggregates

import (
	"slices"

	"github.com/acl-es/acl/events"
)

// CommandResult is what an aggregate remembers of a command it applied, so that a retry with the
// same command id answers the same, also after the stream's duplicate window.
type CommandResult struct {
	Seq    uint64   `json:"seq"`
	Events []string `json:"events"`
	Hash   string   `json:"hash,omitempty"`
}

// Role is a role of a tenant with the ids of the events that shaped its grants.
type Role struct {
	Def events.RoleDef `json:"def"`
	// GrantEvents maps "permission|scope" to the id of the event that added that grant.
	GrantEvents map[string]string `json:"grant_events"`
}

// GrantKey is the map key of a grant.
func GrantKey(g events.Grant) string { return g.Permission + "|" + g.Scope }

// Tenant is the tenant aggregate: policy, roles, units, subscription and seat use.
type Tenant struct {
	ID        string            `json:"id"`
	Exists    bool              `json:"exists"`
	Preset    string            `json:"preset"`
	AdminRole string            `json:"admin_role"`
	Policy    events.Policy     `json:"policy"`
	Roles     map[string]*Role  `json:"roles"`
	Units     map[string]string `json:"units"` // UnitKey(unit) -> id of the event that defined it
	Features  []string          `json:"features"`
	Seats     map[string]int    `json:"seats"` // level -> maximum; missing is unlimited
	// SeatHolders maps each principal above disabled to its level (TO-7).
	SeatHolders map[string]string        `json:"seat_holders"`
	PolicyEvent string                   `json:"policy_event"`
	Commands    map[string]CommandResult `json:"-"`
	Seq         uint64                   `json:"seq"` // last applied sequence of its subject
}

// NewTenant returns the empty state of a tenant that does not exist yet.
func NewTenant(id string) *Tenant {
	return &Tenant{ID: id, Roles: map[string]*Role{}, Units: map[string]string{},
		Seats: map[string]int{}, SeatHolders: map[string]string{}, Commands: map[string]CommandResult{}}
}

// UnitKey is the map key of a unit: "kind:id".
func UnitKey(u events.UnitRef) string { return u.Kind + ":" + u.ID }

// HasUnit reports whether the tenant defined unit u.
func (t *Tenant) HasUnit(u events.UnitRef) bool { _, ok := t.Units[UnitKey(u)]; return ok }

// HasFeature reports whether the tenant's subscription has feature f.
func (t *Tenant) HasFeature(f string) bool { return contains(t.Features, f) }

// KnowsPermission reports whether the tenant's policy names perm.
func (t *Tenant) KnowsPermission(perm string) bool { return contains(t.Policy.Permissions, perm) }

// SeatsUsed counts the principals at level.
func (t *Tenant) SeatsUsed(level string) int {
	n := 0
	for _, l := range t.SeatHolders {
		if l == level {
			n++
		}
	}
	return n
}

// Principal is the principal aggregate.
type Principal struct {
	ID      string           `json:"id"`
	Exists  bool             `json:"exists"`
	Removed bool             `json:"removed"`
	Kind    string           `json:"kind"`
	Email   string           `json:"email"`
	Client  string           `json:"client"`
	Units   []events.UnitRef `json:"units"` // sorted, no duplicates
	Roles   []string         `json:"roles"` // sorted, no duplicates
	Level   string           `json:"level"`
	Grants  []events.Grant   `json:"grants"` // direct grants, sorted
	Denied  []string         `json:"denied"` // sorted
	// Prov maps a fact to the id of the event that created it: "registered", "level",
	// "role:<id>", "grant:<perm>|<scope>", "deny:<perm>", "unit:<kind>:<id>", "email".
	Prov     map[string]string `json:"prov"`
	Commands Commands          `json:"-"`
	Seq      uint64            `json:"seq"`
}

// NewPrincipal returns the state of a principal that does not exist yet.
func NewPrincipal(id string) *Principal {
	return &Principal{ID: id, Level: LevelDisabled, Prov: map[string]string{}}
}

// Active reports whether the principal exists and is not removed.
func (p *Principal) Active() bool { return p != nil && p.Exists && !p.Removed }

// Record is the record aggregate.
type Record struct {
	Type      string             `json:"type"`
	ID        string             `json:"id"`
	Exists    bool               `json:"exists"`
	Removed   bool               `json:"removed"`
	Client    string             `json:"client"`
	Units     []events.UnitRef   `json:"units"`
	Owner     string             `json:"owner"`
	Assignees []events.Assignee  `json:"assignees"` // sorted by principal then relation
	Links     []events.RecordRef `json:"links"`
	// Prov: "body" (last register/update event), "assignee:<principal>|<relation>".
	Prov     map[string]string `json:"prov"`
	Commands Commands          `json:"-"`
	Seq      uint64            `json:"seq"`
}

// NewRecord returns the state of a record that does not exist yet.
func NewRecord(typ, id string) *Record {
	return &Record{Type: typ, ID: id, Prov: map[string]string{}}
}

// Active reports whether the record exists and is not removed.
func (r *Record) Active() bool { return r != nil && r.Exists && !r.Removed }

// HasRelation reports whether principal holds any relation to the record (owning is not one).
func (r *Record) HasRelation(principal string) bool {
	for _, a := range r.Assignees {
		if a.Principal == principal {
			return true
		}
	}
	return false
}

// PrincipalAsRecord is the record a principal is: type by kind, its id, units and client, owned
// by itself. Nil when the principal is not active.
func PrincipalAsRecord(p *Principal) *Record {
	if !p.Active() {
		return nil
	}
	return &Record{Type: PrincipalRecordType(p.Kind), ID: p.ID, Exists: true, Client: p.Client,
		Units: p.Units, Owner: p.ID, Prov: map[string]string{"body": p.Prov["registered"]}}
}

// UnitAsRecord is the record a unit is: of its kind's type, whose unit is itself.
func UnitAsRecord(u events.UnitRef, eventID string) *Record {
	return &Record{Type: u.Kind, ID: u.ID, Exists: true, Units: []events.UnitRef{u},
		Prov: map[string]string{"body": eventID}}
}

// RememberCommand records e in what its aggregate remembers of its command. A state read back
// from a read model may hold no map (nobody asks it of commands): the first event applied
// makes one.
func RememberCommand(cmds *map[string]CommandResult, e events.Envelope) {
	if e.CommandID == "" {
		return
	}
	if *cmds == nil {
		*cmds = map[string]CommandResult{}
	}
	r := (*cmds)[e.CommandID]
	r.Seq = e.Seq
	r.Events = append(r.Events, e.ID)
	r.Hash = e.CommandHash
	(*cmds)[e.CommandID] = r
}

func unitLess(a, b events.UnitRef) int {
	if a.Kind != b.Kind {
		if a.Kind < b.Kind {
			return -1
		}
		return 1
	}
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

func grantLess(a, b events.Grant) int {
	if a.Permission != b.Permission {
		if a.Permission < b.Permission {
			return -1
		}
		return 1
	}
	switch {
	case a.Scope < b.Scope:
		return -1
	case a.Scope > b.Scope:
		return 1
	}
	return 0
}

func assigneeLess(a, b events.Assignee) int {
	if a.Principal != b.Principal {
		if a.Principal < b.Principal {
			return -1
		}
		return 1
	}
	switch {
	case a.Relation < b.Relation:
		return -1
	case a.Relation > b.Relation:
		return 1
	}
	return 0
}

// insertSorted adds x to the sorted set xs.
func insertSorted[T any](xs []T, x T, cmp func(a, b T) int) []T {
	i, found := slices.BinarySearchFunc(xs, x, cmp)
	if found {
		return xs
	}
	return slices.Insert(slices.Clone(xs), i, x)
}

// removeSorted removes x from the sorted set xs.
func removeSorted[T any](xs []T, x T, cmp func(a, b T) int) []T {
	i, found := slices.BinarySearchFunc(xs, x, cmp)
	if !found {
		return xs
	}
	return slices.Delete(slices.Clone(xs), i, i+1)
}

func sortedUnits(us []events.UnitRef) []events.UnitRef {
	out := slices.Clone(us)
	slices.SortFunc(out, unitLess)
	return slices.CompactFunc(out, func(a, b events.UnitRef) bool { return a == b })
}

func sortedAssignees(as []events.Assignee) []events.Assignee {
	out := slices.Clone(as)
	for i := range out {
		if out[i].Relation == "" {
			out[i].Relation = events.DefaultRelation
		}
	}
	slices.SortFunc(out, assigneeLess)
	return slices.CompactFunc(out, func(a, b events.Assignee) bool { return a == b })
}

func strCmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
