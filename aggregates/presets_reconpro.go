package aggregates

import "github.com/acl-es/acl/events"

// The ReconPro seed (000_*) groups its data in three families; these are their permissions.
var (
	// "settings (clients, employees, teams, areas, services, devices, types, etc.)": record
	// settings (units are records of their kind) and non-record settings pages.
	reconproSettingRecords = []string{"client", "employee", "user", "team", "area"}
	reconproSettingPages   = []string{"service", "device", "type"}
	// "operational (service requests, inspections, work orders, and invoices)", plus the
	// technicians' repair orders.
	reconproOperational = []string{"service_request", "inspection", "work_order", "invoice", "repair_order"}
	reconproApprovals   = []string{"inspection.approve", "work_order.approve"}
	// "reporting data (reports and timesheets)".
	reconproReporting = []string{"report.view", "timesheet.view", "timesheet.edit"}
	// The mobile application's data: what employees work on in the field.
	reconproMobile = []string{"service_request", "inspection", "work_order", "repair_order"}
)

// FeatureTechnicianUsers is the subscription feature the Technician role requires (RP-3).
const FeatureTechnicianUsers = "technician_users"

// FeatureMonitor is the subscription feature of the Monitor, which the monitor manager client
// roles require (RP-11: "Features available for client users depend on your subscriptions").
const FeatureMonitor = "monitor"

// reconproOps is every operational and reporting permission.
func reconproOps() []string {
	ops := append(actions(reconproOperational, "view", "edit"), reconproApprovals...)
	return append(ops, reconproReporting...)
}

// reconproSettings is every settings permission.
func reconproSettings() []string {
	return append(actions(reconproSettingRecords, "view", "edit"), actions(reconproSettingPages, "view", "edit")...)
}

// reconpro is the ReconPro seed. Where the article is vague ("some settings", "some operational
// data") the choice is made here, quoting the article per role; presets_test.go checks each
// RP-1..RP-12 statement against it.
func reconpro() events.TenantCreatedV1 {
	staff := func() []string { return []string{KindStaff} }
	contact := func() []string { return []string{KindClientContact} }
	employee := func() []string { return []string{KindEmployee} }

	// "Work Managers have access to some operational and reporting data": the work itself
	// (service requests, inspections, work orders and their approvals) and reports, not
	// invoices or repair orders.
	workData := []string{"service_request", "inspection", "work_order"}
	workManager := append(actions(workData, "view", "edit"), reconproApprovals...)
	workManager = append(workManager, "report.view", "timesheet.view")

	// "Team/Area Administrators have access to settings, operational and reporting data
	// limited by their team/area scope", and manage the access of their unit's people (SPEC
	// section 5). Team settings are the team's records; an area administrator's are the area's.
	unitAdmin := func(unit string) []string {
		recs := []string{"client", "employee", "user", unit}
		perms := append(actions(recs, "view", "edit"), actions(reconproSettingPages, "view", "edit")...)
		return append(append(perms, reconproOps()...), ManageAccess)
	}

	// "Employees have access to most of the mobile application data and features, but they
	// cannot approve inspections and work orders, as well as they cannot see timesheets of
	// other team members": the mobile data at all, their own timesheets only.
	employeeGrants := [][]events.Grant{
		at(ScopeAll, actions(reconproMobile, "view", "edit")...),
		at(ScopeOwn, "timesheet.view", "timesheet.edit"),
	}

	roles := []events.RoleDef{
		// "Administrators have access to all settings ..., all operational ..., and reporting data."
		{Role: "administrator", PrincipalKinds: staff()},
		// "Accountants have access to all operational and reporting data, but only to some
		// settings": the settings an accountant bills with (clients, services, types), not
		// people, units or devices.
		role("accountant", staff(),
			at(ScopeAll, reconproOps()...),
			at(ScopeAll, "client.view", "client.edit", "service.view", "type.view")),
		// "Technicians have access to repair orders and reporting data of the team they are
		// assigned to (... if subscribed to the TechnicianUsers feature)."
		exclusive(feature(role("technician", staff(),
			at(ScopeUnitTeam, append(actions([]string{"repair_order"}, "view", "edit"), reconproReporting...)...)),
			FeatureTechnicianUsers)),
		role("work_manager", staff(), at(ScopeAll, workManager...)),
		// "Work Managers (Read-Only) have only "view" access to some operational and reporting
		// data": the work manager's data, view actions only.
		role("work_manager_read_only", staff(), at(ScopeAll, viewsOnly(workManager)...)),
		// "Team Work Managers have access to operational and reporting data of their teams only."
		exclusive(role("team_work_manager", staff(), at(ScopeUnitTeam, reconproOps()...))),
		// "Area Work Managers have access to operational and reporting data of their areas only."
		exclusive(role("area_work_manager", staff(), at(ScopeUnitArea, reconproOps()...))),
		exclusive(role("team_administrator", staff(), at(ScopeUnitTeam, unitAdmin(UnitTeam)...))),
		exclusive(role("area_administrator", staff(), at(ScopeUnitArea, unitAdmin(UnitArea)...))),

		// Client user roles see their client's data (scope client; a client contact's scopes
		// never reach beyond its client anyway).
		// "Clients have access to all available client data. It is an administrative role that
		// has more permissions than any other client user's role": it also manages the access
		// of its client's contacts.
		role("client", contact(), at(ScopeClient,
			"client.view", "service_request.view", "service_request.edit", "inspection.view",
			"inspection.approve", "work_order.view", "work_order.approve", "invoice.view",
			"repair_order.view", "report.view", ManageAccess)),
		// "Client Accountants have access to the client data": its client, invoices and reports.
		role("client_accountant", contact(), at(ScopeClient, "client.view", "invoice.view", "report.view")),
		// "Client Monitor Managers have access to the Monitor and its dashboards, some
		// operational and reporting data."
		feature(role("client_monitor_manager", contact(), at(ScopeClient,
			"monitor.view", "service_request.view", "inspection.view", "work_order.view", "report.view")),
			FeatureMonitor),
		// "Client Inspectors can approve or decline client inspections."
		role("client_inspector", contact(), at(ScopeClient, "inspection.view", "inspection.approve")),
		// "Sales Persons can track their commissions": the commissions they are assigned to.
		role("sales_person", contact(), at(ScopeAssigned, "commission.view")),
		// "Sales Person Monitor Managers have access to the Monitor and its dashboards for
		// tracking orders in which they are involved": the orders they are assigned to.
		feature(role("sales_person_monitor_manager", contact(),
			at(ScopeClient, "monitor.view"),
			at(ScopeAssigned, "service_request.view", "work_order.view")),
			FeatureMonitor),

		role("employee", employee(), employeeGrants...),
		// "Inspectors have the same level of access as employees, but they can approve
		// inspections and work orders."
		role("inspector", employee(), append(employeeGrants, at(ScopeAll, reconproApprovals...))...),
		// "Managers have full access to all mobile application data and features."
		role("manager", employee(),
			at(ScopeAll, actions(reconproMobile, "view", "edit")...),
			at(ScopeAll, reconproApprovals...),
			at(ScopeAll, "timesheet.view", "timesheet.edit")),
	}
	pol := emptyPolicy()
	pol.Permissions = append(reconproSettings(), reconproOps()...)
	return withAdmin(roles, "administrator", pol)
}

func exclusive(r events.RoleDef) events.RoleDef { r.Exclusive = true; return r }

func feature(r events.RoleDef, f string) events.RoleDef { r.RequiresFeature = f; return r }

// viewsOnly keeps the permissions whose action is view.
func viewsOnly(perms []string) []string {
	var out []string
	for _, p := range perms {
		if len(p) > 5 && p[len(p)-5:] == ".view" {
			out = append(out, p)
		}
	}
	return out
}
