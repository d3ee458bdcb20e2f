package aggregates

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/acl-es/acl/events"
)

// seedRow is one permission row of testdata/probuild_matrix.txt.
type seedRow struct {
	label string // "Section / Permission"
	marks int
}

// parseProbuildMatrix reads the seed table: a row whose cells are all empty is a section
// heading, "Permission" rows and separators are skipped, other rows count their marks.
func parseProbuildMatrix(t *testing.T) []seedRow {
	t.Helper()
	raw, err := os.ReadFile("testdata/probuild_matrix.txt")
	if err != nil {
		t.Fatal(err)
	}
	var rows []seedRow
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		label := strings.TrimSpace(cells[0])
		marks := 0
		for _, c := range cells[1:] {
			switch strings.TrimSpace(c) {
			case "x":
				marks++
			case "", "Admin", "Manager", "Worker", "Subcontractor":
			default:
				t.Fatalf("unexpected cell %q in %q", c, line)
			}
		}
		switch {
		case label == "Permission":
		case marks == 0:
			section = label
		default:
			rows = append(rows, seedRow{section + " / " + label, marks})
		}
	}
	return rows
}

// TestPresetPB1SeedTable checks the probuild preset against the seed table row by row: the
// marks read left to right give the roles that hold the row's grant, and no role holds a grant
// that no row gives it (besides session.login).
func TestPresetPB1SeedTable(t *testing.T) {
	rows := parseProbuildMatrix(t)
	if len(rows) != 53 {
		t.Fatalf("parsed %d rows from the seed table, want 53", len(rows))
	}
	table := probuildTable()
	byLabel := map[string]probuildRow{}
	for _, r := range table {
		byLabel[r.label] = r
	}
	if len(byLabel) != len(rows) {
		t.Errorf("the preset has %d rows, the seed %d", len(byLabel), len(rows))
	}
	c := mustPreset(t, "probuild")
	given := map[string][]events.Grant{} // what the seed gives each role
	for _, row := range rows {
		pr, ok := byLabel[row.label]
		if !ok {
			t.Errorf("seed row %q has no permission in the preset", row.label)
			continue
		}
		if pr.marks != row.marks {
			t.Errorf("%s: the preset reads %d marks, the seed has %d", row.label, pr.marks, row.marks)
		}
		if row.marks != 1 && row.marks != 2 && row.marks != 4 {
			t.Errorf("%s: %d marks cannot be read left to right", row.label, row.marks)
		}
		for col, id := range probuildRoles {
			holds := slices.Contains(roleDef(t, c, id).Grants, pr.grant)
			if want := col < row.marks; holds != want {
				t.Errorf("%s: role %s holds %v = %v, want %v", row.label, id, pr.grant, holds, want)
			}
			if col < row.marks {
				given[id] = append(given[id], pr.grant)
			}
		}
	}
	for _, id := range probuildRoles {
		for _, g := range roleDef(t, c, id).Grants {
			if g.Permission != SessionLogin && !slices.Contains(given[id], g) {
				t.Errorf("role %s holds %v, which no seed row gives it", id, g)
			}
		}
	}
}

// TestPresetPB3PB4PB5Scopes checks how the row names read (SPEC PB-3, PB-4, PB-5).
func TestPresetPB3PB4PB5Scopes(t *testing.T) {
	for _, r := range probuildTable() {
		want := ScopeAll
		switch {
		case strings.Contains(r.label, "Your Own"):
			want = ScopeOwn
		case r.label == "Projects / View Project Details":
			want = ScopeAssigned
		}
		if r.grant.Scope != want {
			t.Errorf("%s: scope %s, want %s", r.label, r.grant.Scope, want)
		}
	}
	want := map[string]events.Grant{
		"Projects / View All Projects":                  {Permission: "project.view", Scope: ScopeAll},
		"Projects / View Project Details":               {Permission: "project.view", Scope: ScopeAssigned},
		"Business Settings / Manage Access Permissions": {Permission: ManageAccess, Scope: ScopeAll},
		"Timesheets / Edit Your Own":                    {Permission: "timesheet.edit", Scope: ScopeOwn},
		"Timesheets / Edit Other User's":                {Permission: "timesheet.edit", Scope: ScopeAll},
		"Projects / Delete Others' Project Post":        {Permission: "project_post.delete", Scope: ScopeAll},
	}
	for _, r := range probuildTable() {
		if g, ok := want[r.label]; ok && g != r.grant {
			t.Errorf("%s: %v, want %v", r.label, r.grant, g)
		}
	}
}

// TestPresetProbuildNames: the policy names exactly SPEC section 7's Probuild permissions.
func TestPresetProbuildNames(t *testing.T) {
	want := []string{ManageAccess, SessionLogin, "location.view_clocked_in", "location.view_gps",
		"chat.create", "chat.send", "business_profile.view", "business_profile.edit"}
	add := func(res string, acts ...string) {
		for _, a := range acts {
			want = append(want, res+"."+a)
		}
	}
	add("subscription", "create", "manage")
	add("user", "view", "edit", "invite", "delete")
	add("project", "view", "create", "edit", "delete", "add_user", "view_time_totals")
	add("project_post", "create", "comment", "edit", "delete")
	add("invoice", "view", "create", "edit", "delete", "send", "track_payments")
	add("timesheet", "view", "create", "edit", "delete", "export")
	for _, res := range []string{"item", "client", "contract"} {
		add(res, "view", "create", "edit", "delete")
	}
	slices.Sort(want)
	if got := mustPreset(t, "probuild").Policy.Permissions; !slices.Equal(got, want) {
		t.Errorf("policy %v\nwant %v", got, want)
	}
}
