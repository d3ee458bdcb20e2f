package aggregates

import "github.com/acl-es/acl/events"

// TenantQuery asks for a tenant's overview (the auditor's console's first page): its roles,
// units and record types, and one page of its principals, those whose id starts with Search or
// whose email contains it (case-insensitive) when Search is set.
type TenantQuery struct {
	Search string `json:"search,omitempty"`
	Limit  int    `json:"limit,omitempty"`  // 0: the default (100); at most 1000
	Cursor string `json:"cursor,omitempty"` // the last principal id of the previous page
}

// TenantAnswer: the tenant's preset, features, roles (as defined now, ascending), units, the
// number of active records of each type (principals and units are records too), and a page of
// principals in id order, removed ones included (marked).
type TenantAnswer struct {
	Preset     string             `json:"preset"`
	Features   []string           `json:"features"`
	Roles      []events.RoleDef   `json:"roles"`
	Units      []events.UnitRef   `json:"units"`
	Types      []TypeCount        `json:"types"`
	Principals []PrincipalSummary `json:"principals"`
	NextCursor string             `json:"next_cursor"`
	Seq        uint64             `json:"seq"`
}

// TypeCount is how many active records of a type a tenant has.
type TypeCount struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

// PrincipalSummary is one line of a tenant's principals.
type PrincipalSummary struct {
	Principal string   `json:"principal"`
	Kind      string   `json:"kind"`
	Level     string   `json:"level"`
	Email     string   `json:"email"`
	Client    string   `json:"client"`
	Roles     []string `json:"roles"`
	Removed   bool     `json:"removed"`
}
