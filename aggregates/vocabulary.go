package aggregates

// Principal kinds.
const (
	KindStaff         = "staff"
	KindClientContact = "client_contact"
	KindEmployee      = "employee"
)

// Access levels, widest first.
const (
	LevelFull         = "full"
	LevelFullLocation = "full_location"
	LevelLimited      = "limited"
	LevelDisabled     = "disabled"
)

// Scopes on the wire.
const (
	ScopeAll          = "all"
	ScopeClient       = "client"
	ScopeUnitLocation = "unit:location"
	ScopeUnitTeam     = "unit:team"
	ScopeUnitArea     = "unit:area"
	ScopeAssigned     = "assigned"
	ScopeOwn          = "own"
)

// Unit kinds.
const (
	UnitLocation = "location"
	UnitTeam     = "team"
	UnitArea     = "area"
)

// SystemActor is the operator's actor; no principal may take this id.
const SystemActor = "system"

// ManageAccess is the permission that allows issuing access commands (PB-5).
const ManageAccess = "user.manage_access"

// SessionLogin is the permission of logging in (TO-5).
const SessionLogin = "session.login"

var (
	Kinds      = []string{KindStaff, KindClientContact, KindEmployee}
	Levels     = []string{LevelFull, LevelFullLocation, LevelLimited, LevelDisabled}
	Scopes     = []string{ScopeAll, ScopeClient, ScopeUnitLocation, ScopeUnitTeam, ScopeUnitArea, ScopeAssigned, ScopeOwn}
	UnitKinds  = []string{UnitLocation, UnitTeam, UnitArea}
	PresetIDs  = []string{"reconpro", "trackops", "probuild", "empty"}
	levelRanks = map[string]int{LevelDisabled: 0, LevelLimited: 1, LevelFullLocation: 2, LevelFull: 3}
)

// LevelRank orders access levels: full > full_location > limited > disabled. Unknown is -1.
func LevelRank(level string) int {
	if r, ok := levelRanks[level]; ok {
		return r
	}
	return -1
}

// PrincipalRecordType is the record type of a principal of a kind: principals are records too.
func PrincipalRecordType(kind string) string {
	switch kind {
	case KindStaff:
		return "user"
	case KindEmployee:
		return "employee"
	case KindClientContact:
		return "client_contact"
	}
	return ""
}

// IsPrincipalRecordType reports whether records of type t are principals.
func IsPrincipalRecordType(t string) bool {
	return t == "user" || t == "employee" || t == "client_contact"
}

// IsUnitRecordType reports whether records of type t are units.
func IsUnitRecordType(t string) bool { return t == UnitLocation || t == UnitTeam || t == UnitArea }

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
