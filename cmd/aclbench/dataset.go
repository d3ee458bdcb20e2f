package main

import (
	"fmt"
	"strings"
)

// Scale is the size of a data set: records and principals across all tenants.
type Scale struct {
	Records    int      `json:"records"`    // records (clients not counted) over all tenants
	Principals int      `json:"principals"` // principals over all tenants; 0: Records/10 within 10^3..10^5
	Tenants    int      `json:"tenants"`    // default 1
	Presets    []string `json:"presets"`    // tenant k has preset Presets[k % len]; default trackops
	Prefix     string   `json:"prefix"`     // tenant ids start with it; default "bench"
}

// Dataset is the tenants a seed and a scale describe. Every principal, record and command of it
// is a pure function of (seed, tenant, index), so two runs with one seed produce the same
// commands, and a workload can rebuild any record's description without keeping them all.
type Dataset struct {
	Seed    uint64    `json:"seed"`
	Scale   Scale     `json:"scale"`
	Tenants []*Tenant `json:"-"`
}

// NewDataset lays out the tenants of a scale.
func NewDataset(seed uint64, s Scale) (*Dataset, error) {
	if s.Records < 0 || s.Principals < 0 || s.Tenants < 0 {
		return nil, fmt.Errorf("negative scale %+v", s)
	}
	if s.Tenants == 0 {
		s.Tenants = 1
	}
	if len(s.Presets) == 0 {
		s.Presets = []string{"trackops"}
	}
	if s.Prefix == "" {
		s.Prefix = "bench"
	}
	if s.Principals == 0 {
		s.Principals = min(max(s.Records/10, 1000), 100_000)
	}
	d := &Dataset{Seed: seed, Scale: s}
	for k := range s.Tenants {
		preset := s.Presets[k%len(s.Presets)]
		prof, err := profileFor(preset)
		if err != nil {
			return nil, err
		}
		// Split evenly; the first tenants take the remainder.
		recs := s.Records / s.Tenants
		if k < s.Records%s.Tenants {
			recs++
		}
		ps := max(s.Principals/s.Tenants, 20)
		id := fmt.Sprintf("%s-%s-%d", s.Prefix, preset, k)
		d.Tenants = append(d.Tenants, newTenant(seed, id, prof, ps, recs))
	}
	return d, nil
}

// String describes the data set in one line.
func (d *Dataset) String() string {
	var ts []string
	for _, t := range d.Tenants {
		ts = append(ts, fmt.Sprintf("%s (%d principals, %d records, %d clients, %d units)",
			t.ID, t.Principals, t.Records, t.Clients, t.Locations+t.Teams+t.Areas))
	}
	return fmt.Sprintf("seed %d: %s", d.Seed, strings.Join(ts, "; "))
}

// Tenant is one generated tenant: its preset's profile and how many of everything it has.
type Tenant struct {
	ID         string
	Preset     string
	Principals int // besides the administrator "admin" that CreateTenant registers
	Records    int
	Clients    int
	Locations  int
	Teams      int
	Areas      int

	seed     uint64
	prof     *profile
	kslots   []int
	rslots   []int
	contacts []int // kind slots (within 20) that are client contacts
}

func newTenant(seed uint64, id string, prof *profile, principals, records int) *Tenant {
	t := &Tenant{ID: id, Preset: prof.preset, Principals: principals, Records: records, seed: seed, prof: prof,
		kslots: prof.kindSlots(), rslots: prof.recordSlots()}
	// Units and clients grow with the tenant, within bounds a business of that size has: a
	// branch per 500 people, a team per 50, an area per 2,000; a client per 200 records.
	t.Locations = clamp(principals/500, 2, 200)
	t.Teams = clamp(principals/50, 3, 2000)
	t.Areas = clamp(principals/2000, 2, 50)
	t.Clients = clamp(records/200, 5, 5000)
	for s, k := range t.kslots {
		if prof.kinds[k].kind == "client_contact" {
			t.contacts = append(t.contacts, s)
		}
	}
	return t
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// Admin is the administrator CreateTenant registers; it issues the tenant's other commands.
const Admin = "admin"

// Ids. Zero-padded so that id order is index order, as a service's ids often are.
func principalID(j int) string          { return fmt.Sprintf("p-%07d", j) }
func recordID(typ string, i int) string { return fmt.Sprintf("%s-%08d", typ, i) }
func clientID(c int) string             { return fmt.Sprintf("client-%05d", c) }
func locationID(n int) string           { return fmt.Sprintf("loc-%03d", n) }
func teamID(n int) string               { return fmt.Sprintf("team-%04d", n) }
func areaID(n int) string               { return fmt.Sprintf("area-%02d", n) }
