package aggregates

import "github.com/acl-es/acl/events"

// trackops is the Trackops seed (001_*): roles say what kind of thing a principal may do, the
// access level says which records (TO-1). Its policy carries the article's exceptions:
//   - "Some reporting cannot be limited to location-only statistics": report.view is unscoped (TO-3);
//   - "Employees that are granted limited access will still be able to see all clients ... all
//     client contacts": limited exceptions for staff (TO-4a, TO-4b);
//   - "All other employees will only see invoices that are connected to cases on which they are
//     assigned": the link rule invoice -> case for staff only (TO-4d; client contacts see only
//     invoices assigned to them, TO-4e);
//   - "All users who can view invoices, will be able to see the client that is associated with
//     the invoice": the implication invoice.view -> client.view (TO-4f).
func trackops() events.TenantCreatedV1 {
	staffData := []string{"case", "expense", "invoice", "review", "client", "client_contact", "user"}
	roles := []events.RoleDef{
		{Role: "administrator", PrincipalKinds: []string{KindStaff}},
		role("staff", []string{KindStaff},
			at(ScopeAll, actions(staffData, "view", "edit")...),
			at(ScopeAll, "report.view")),
		role("client_contact", []string{KindClientContact},
			at(ScopeAll, "case.view", "invoice.view")),
	}
	pol := emptyPolicy()
	pol.Unscoped = []string{"report.view"}
	pol.Limited = []events.LimitedException{
		{Permission: "client.view", Kinds: []string{KindStaff}},
		{Permission: "client_contact.view", Kinds: []string{KindStaff}},
	}
	pol.Links = []events.LinkRule{{Type: "invoice", Via: "case", Kinds: []string{KindStaff}}}
	pol.Implies = []events.Implication{{Permission: "invoice.view", Field: "client", Grants: "client.view"}}
	return withAdmin(roles, "administrator", pol)
}
