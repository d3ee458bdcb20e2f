package aggregates

import "github.com/acl-es/acl/events"

// probuildRow is one row of the Probuild seed table (003_*): the permission and scope it stands
// for and how many marks it has. Marks read left to right (PB-1): 1 = admin, 2 = admin and
// manager, 4 = admin, manager, worker and subcontractor.
type probuildRow struct {
	label string // the row as the seed names it, "Section / Permission"
	grant events.Grant
	marks int
}

// probuildRoles are the table's columns, left to right.
var probuildRoles = []string{"admin", "manager", "worker", "subcontractor"}

// probuildTable is the seed table. "your own" rows are scope own and "other user's"/"others'"
// rows scope all (PB-3); "View All Projects" is project.view at all and "View Project Details"
// project.view at assigned (PB-4); every other row is scope all.
func probuildTable() []probuildRow {
	all := func(label, perm string, marks int) probuildRow {
		return probuildRow{label, events.Grant{Permission: perm, Scope: ScopeAll}, marks}
	}
	own := func(label, perm string, marks int) probuildRow {
		return probuildRow{label, events.Grant{Permission: perm, Scope: ScopeOwn}, marks}
	}
	return []probuildRow{
		all("Business Settings / View Business Profile", "business_profile.view", 4),
		all("Business Settings / Edit Business Profile", "business_profile.edit", 1),
		all("Business Settings / Manage Access Permissions", ManageAccess, 2),
		all("Subscriptions / Create", "subscription.create", 1),
		all("Subscriptions / Manage", "subscription.manage", 1),
		all("Location Tracking / View Clocked In Users", "location.view_clocked_in", 2),
		all("Location Tracking / View GPS Location Data", "location.view_gps", 2),
		all("Users / View User Profile(s)", "user.view", 4),
		all("Users / Edit User Profile(s)", "user.edit", 2),
		all("Users / Add and Invite User(s)", "user.invite", 2),
		all("Users / Delete User(s)", "user.delete", 2),
		all("Projects / View All Projects", "project.view", 1),
		all("Projects / Create New Project", "project.create", 2),
		{"Projects / View Project Details", events.Grant{Permission: "project.view", Scope: ScopeAssigned}, 4},
		all("Projects / Edit Project Details", "project.edit", 2),
		all("Projects / Delete Project(s)", "project.delete", 2),
		all("Projects / Add User(s) to Project", "project.add_user", 2),
		all("Projects / View Project Time Totals", "project.view_time_totals", 2),
		all("Projects / Create Project Post", "project_post.create", 4),
		all("Projects / Comment on Project Post", "project_post.comment", 4),
		own("Projects / Edit Your Own Project Post", "project_post.edit", 4),
		own("Projects / Delete Your Own Project Post", "project_post.delete", 4),
		all("Projects / Edit Others' Project Post", "project_post.edit", 1),
		all("Projects / Delete Others' Project Post", "project_post.delete", 2),
		all("Estimates/Invoices / View", "invoice.view", 2),
		all("Estimates/Invoices / Create", "invoice.create", 2),
		all("Estimates/Invoices / Edit", "invoice.edit", 2),
		all("Estimates/Invoices / Delete", "invoice.delete", 2),
		all("Estimates/Invoices / Send", "invoice.send", 2),
		all("Estimates/Invoices / Track Invoice Payments", "invoice.track_payments", 2),
		own("Timesheets / View Your Own", "timesheet.view", 4),
		own("Timesheets / Create Your Own", "timesheet.create", 4),
		own("Timesheets / Edit Your Own", "timesheet.edit", 4),
		own("Timesheets / Delete Your Own", "timesheet.delete", 4),
		all("Timesheets / View Other User's", "timesheet.view", 4),
		all("Timesheets / Create Other User's", "timesheet.create", 2),
		all("Timesheets / Edit Other User's", "timesheet.edit", 2),
		all("Timesheets / Delete Other User's", "timesheet.delete", 2),
		all("Timesheets / Export Timesheet Data", "timesheet.export", 2),
		all("Items / View", "item.view", 2),
		all("Items / Create", "item.create", 2),
		all("Items / Edit", "item.edit", 2),
		all("Items / Delete", "item.delete", 2),
		all("Clients / View", "client.view", 2),
		all("Clients / Create", "client.create", 2),
		all("Clients / Edit", "client.edit", 2),
		all("Clients / Delete", "client.delete", 2),
		all("Contracts / View", "contract.view", 2),
		all("Contracts / Create", "contract.create", 2),
		all("Contracts / Edit", "contract.edit", 2),
		all("Contracts / Delete", "contract.delete", 2),
		all("Chats / Create", "chat.create", 4),
		all("Chats / Send Messages", "chat.send", 4),
	}
}

// probuild is the Probuild seed: four roles with exactly the table's defaults (PB-1). The
// article names no kinds of user, so every role may be held by every kind. Its policy has no
// unscoped, limited, link or implication rules: the article describes none.
func probuild() events.TenantCreatedV1 {
	table := probuildTable()
	var roles []events.RoleDef
	for col, id := range probuildRoles {
		var gs []events.Grant
		for _, row := range table {
			if col < row.marks {
				gs = append(gs, row.grant)
			}
		}
		roles = append(roles, role(id, allKinds(), gs))
	}
	return withAdmin(roles, "admin", emptyPolicy())
}
