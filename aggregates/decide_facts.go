package aggregates

import (
	"maps"
	"slices"
)

// RoleHolder implements RoleHolders over every principal of the tenant.
func (m *Memory) RoleHolder(role string) string {
	for _, id := range slices.Sorted(maps.Keys(m.Principals)) {
		if p := m.Principals[id]; p.Active() && slices.Contains(p.Roles, role) {
			return id
		}
	}
	return ""
}
