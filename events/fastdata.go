package events

// Decoding the data of the events a replay or a catch-up reads most (registrations,
// assignments, level and role changes) with encoding/json costs about as much as the rest of
// applying them (reflection, a validation pass, a string allocation per field). fastData
// decodes the data of those types with the scanner of fastdecode.go, by the same rule: it
// accepts only input it understands completely and gives up on anything else, and Decode then
// uses encoding/json, which therefore defines the result. It gives up on a key that is not
// exactly a field's name (encoding/json also matches keys case-insensitively and ignores
// unknown ones), on a key seen twice (encoding/json merges), on null inside a list, on a string
// with an escape or invalid UTF-8, and on any value of the wrong kind. A null field keeps its
// zero value, as with encoding/json when the key is seen once. Each string is a copy of its
// own: cutting them all from one copy of the data would save allocations but make every cached
// state (the command service keeps 200,000) hold its whole registration's data.
// TestFastDataAgrees and FuzzDecodeEnvelope check that both decoders agree on everything
// fastData accepts.

// dataScanner is the scanner with the decoders of event data.
type dataScanner struct {
	scanner
}

// Field names of the types fastData decodes, in the order of the indexes the decoders switch on.
var (
	keysUnit       = []string{"kind", "id"}
	keysGrant      = []string{"permission", "scope"}
	keysAssignee   = []string{"principal", "relation"}
	keysRecordRef  = []string{"type", "id"}
	keysRecordBody = []string{"type", "id", "client", "units", "owner", "assignees", "links"}
	keysPrincipal  = []string{"principal", "kind", "email", "client", "units"}
	keysSeat       = []string{"principal", "from", "to"}
	keysLevel      = []string{"level", "from"}
	keysRole       = []string{"role"}
	keysRoleGrant  = []string{"role", "grant"}
	keysEmail      = []string{"email"}
	keysGrantOnly  = []string{"grant"}
	keysPermission = []string{"permission"}
	keysUnitOnly   = []string{"unit"}
)

// fastData decodes raw as the data of an event of type typ, or reports ok=false: an
// unexpected shape or a type it does not handle (the tenant's policy and subscription events,
// rare and nested).
func fastData(typ string, raw []byte) (d Data, ok bool) {
	s := dataScanner{scanner: scanner{b: raw}}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	switch typ {
	case UnitDefined, UnitJoined, UnitLeft:
		var u UnitRef
		ok = s.obj(keysUnitOnly, func(int) bool { return s.unit(&u) })
		switch typ {
		case UnitDefined:
			d = UnitDefinedV1{Unit: u}
		case UnitJoined:
			d = UnitJoinedV1{Unit: u}
		default:
			d = UnitLeftV1{Unit: u}
		}
	case RoleDeleted, RoleAssigned, RoleRevoked:
		var role string
		ok = s.obj(keysRole, func(int) bool { return s.str(&role) })
		switch typ {
		case RoleDeleted:
			d = RoleDeletedV1{Role: role}
		case RoleAssigned:
			d = RoleAssignedV1{Role: role}
		default:
			d = RoleRevokedV1{Role: role}
		}
	case RolePermissionGranted, RolePermissionRevoked:
		var v RolePermissionGrantedV1
		ok = s.obj(keysRoleGrant, func(i int) bool {
			if i == 0 {
				return s.str(&v.Role)
			}
			return s.grant(&v.Grant)
		})
		d = v
		if typ == RolePermissionRevoked {
			d = RolePermissionRevokedV1(v)
		}
	case SeatChanged:
		var v SeatChangedV1
		ok = s.obj(keysSeat, func(i int) bool {
			switch i {
			case 0:
				return s.str(&v.Principal)
			case 1:
				return s.str(&v.From)
			}
			return s.str(&v.To)
		})
		d = v
	case PrincipalRegistered:
		var v PrincipalRegisteredV1
		ok = s.obj(keysPrincipal, func(i int) bool {
			switch i {
			case 0:
				return s.str(&v.Principal)
			case 1:
				return s.str(&v.Kind)
			case 2:
				return s.str(&v.Email)
			case 3:
				return s.str(&v.Client)
			}
			return s.units(&v.Units)
		})
		d = v
	case EmailSet:
		var v EmailSetV1
		ok = s.obj(keysEmail, func(int) bool { return s.str(&v.Email) })
		d = v
	case AccessLevelSet:
		var v AccessLevelSetV1
		ok = s.obj(keysLevel, func(i int) bool {
			if i == 0 {
				return s.str(&v.Level)
			}
			return s.str(&v.From)
		})
		d = v
	case PermissionGranted:
		var v PermissionGrantedV1
		ok = s.obj(keysGrantOnly, func(int) bool { return s.grant(&v.Grant) })
		d = v
	case PermissionDenied, PermissionCleared:
		var p string
		ok = s.obj(keysPermission, func(int) bool { return s.str(&p) })
		d = PermissionDeniedV1{Permission: p}
		if typ == PermissionCleared {
			d = PermissionClearedV1{Permission: p}
		}
	case PrincipalRemoved:
		ok = s.obj(nil, nil)
		d = PrincipalRemovedV1{}
	case RecordRegistered, RecordUpdated:
		var b RecordBody
		ok = s.obj(keysRecordBody, func(i int) bool { return s.recordBody(&b, i) })
		d = RecordRegisteredV1{RecordBody: b}
		if typ == RecordUpdated {
			d = RecordUpdatedV1{RecordBody: b}
		}
	case RecordAssigned, RecordUnassigned:
		var v RecordAssignedV2
		ok = s.obj(keysAssignee, func(i int) bool {
			if i == 0 {
				return s.str(&v.Principal)
			}
			return s.str(&v.Relation)
		})
		d = v
		if typ == RecordUnassigned {
			d = RecordUnassignedV2(v)
		}
	case RecordRemoved:
		ok = s.obj(nil, nil)
		d = RecordRemovedV1{}
	default:
		return nil, false
	}
	if !ok || !s.end() {
		return nil, false
	}
	return d, true
}

// obj reads an object whose keys are all in keys, each at most once (at most 32 keys), calling
// val with the key's index to read its value. A null value is skipped: the field keeps its zero
// value, as encoding/json leaves it.
func (s *dataScanner) obj(keys []string, val func(i int) bool) bool {
	var seen uint32
	return s.object(func(key []byte) bool {
		for i, k := range keys {
			if string(key) != k {
				continue
			}
			if seen&(1<<i) != 0 {
				return false
			}
			seen |= 1 << i
			if s.literal("null") {
				return true
			}
			return val(i)
		}
		return false
	})
}

func (s *dataScanner) unit(u *UnitRef) bool {
	return s.obj(keysUnit, func(i int) bool {
		if i == 0 {
			return s.str(&u.Kind)
		}
		return s.str(&u.ID)
	})
}

func (s *dataScanner) grant(g *Grant) bool {
	return s.obj(keysGrant, func(i int) bool {
		if i == 0 {
			return s.str(&g.Permission)
		}
		return s.str(&g.Scope)
	})
}

func (s *dataScanner) recordBody(b *RecordBody, i int) bool {
	switch i {
	case 0:
		return s.str(&b.Type)
	case 1:
		return s.str(&b.ID)
	case 2:
		return s.str(&b.Client)
	case 3:
		return s.units(&b.Units)
	case 4:
		return s.str(&b.Owner)
	case 5:
		return list(s, &b.Assignees, func(a *Assignee) bool {
			return s.obj(keysAssignee, func(i int) bool {
				if i == 0 {
					return s.str(&a.Principal)
				}
				return s.str(&a.Relation)
			})
		})
	}
	return list(s, &b.Links, func(r *RecordRef) bool {
		return s.obj(keysRecordRef, func(i int) bool {
			if i == 0 {
				return s.str(&r.Type)
			}
			return s.str(&r.ID)
		})
	})
}

func (s *dataScanner) units(dst *[]UnitRef) bool { return list(s, dst, s.unit) }

// list reads an array of objects into *dst: [] gives an empty, non-nil slice, as encoding/json
// does; a null element gives up.
func list[T any](s *dataScanner, dst *[]T, elem func(*T) bool) bool {
	if !s.eat('[') {
		return false
	}
	out := make([]T, 0, 1)
	s.ws()
	if s.eat(']') {
		*dst = out
		return true
	}
	for {
		out = append(out, *new(T))
		if s.i >= len(s.b) || s.b[s.i] != '{' || !elem(&out[len(out)-1]) {
			return false
		}
		s.ws()
		if s.eat(']') {
			*dst = out
			return true
		}
		if !s.eat(',') {
			return false
		}
		s.ws()
	}
}
