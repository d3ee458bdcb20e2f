package console

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// Page sizes: small enough to read, and to answer fast at any size of tenant.
const (
	listPage    = 50 // principals of a tenant
	visiblePage = 20 // records of a type a principal sees
	historyPage = 25 // events of a timeline
)

// indexPage is the data of /ui/.
type indexPage struct{ Default string }

func (c *Console) index(req *request) (view, error) {
	if t := req.r.URL.Query().Get("tenant"); t != "" {
		if !events.ValidToken(t) {
			return view{}, aggregates.Errorf(aggregates.CodeInvalidArgument, "tenant %q is not 1 to 64 of A-Z a-z 0-9 _ -", t)
		}
		return view{}, redirectTo("/ui/t/" + t + "/")
	}
	return view{"index", indexPage{Default: c.opts.DefaultTenant}}, nil
}

// tenantPage is the data of a tenant's page.
type tenantPage struct {
	At      moment
	Search  string
	Cursor  string
	Answer  aggregates.TenantAnswer
	Records []aggregates.TypeCount // the types that are not principals or units
}

func (c *Console) tenant(req *request) (view, error) {
	p := tenantPage{At: req.at, Search: req.r.URL.Query().Get("q"), Cursor: req.r.URL.Query().Get("c.principals")}
	if err := req.ask(c, "tenant", map[string]any{"search": p.Search, "limit": listPage, "cursor": p.Cursor}, &p.Answer); err != nil {
		return view{}, err
	}
	for _, t := range p.Answer.Types {
		if !aggregates.IsPrincipalRecordType(t.Type) && !aggregates.IsUnitRecordType(t.Type) {
			p.Records = append(p.Records, t)
		}
	}
	return view{"tenant", p}, nil
}

// visibleList is one page of the records of a type a principal could view.
type visibleList struct {
	Type   string
	Cursor string // the page's own cursor ("" for the first)
	Answer aggregates.VisibleAnswer
	Next   string // the link to the next page, "" at the end
}

// principalPage is the data of a principal's page.
type principalPage struct {
	At      moment
	ID      string
	Perm    aggregates.PermissionsAnswer
	Visible []visibleList
	History aggregates.HistoryAnswer
	HCursor string
	OnPage  map[string]uint64 // event id -> seq of the events in the timeline (a grant's events link to them)
}

func (c *Console) principal(req *request) (view, error) {
	q := req.r.URL.Query()
	p := principalPage{At: req.at, ID: req.r.PathValue("principal"), HCursor: q.Get("c.history"), OnPage: map[string]uint64{}}
	if err := req.ask(c, "permissions", map[string]any{"principal": p.ID}, &p.Perm); err != nil {
		return view{}, err
	}
	for _, typ := range viewTypes(p.Perm.Grants) {
		l := visibleList{Type: typ, Cursor: q.Get("c." + typ)}
		if err := req.ask(c, "visible", map[string]any{"principal": p.ID, "type": typ, "limit": visiblePage, "cursor": l.Cursor}, &l.Answer); err != nil {
			return view{}, err
		}
		if l.Answer.NextCursor != "" {
			next := req.r.URL.Query()
			next.Set("c."+typ, l.Answer.NextCursor)
			l.Next = req.r.URL.Path + "?" + next.Encode() + "#visible-" + typ
		}
		p.Visible = append(p.Visible, l)
	}
	if err := req.ask(c, "history", map[string]any{"principal": p.ID, "limit": historyPage, "cursor": p.HCursor}, &p.History); err != nil {
		return view{}, err
	}
	for _, e := range p.History.Events {
		p.OnPage[e.ID] = e.Seq
	}
	return view{"principal", p}, nil
}

// viewTypes lists the record types of the view permissions among grants, in their order.
func viewTypes(grants []aggregates.GrantUse) []string {
	var out []string
	for _, g := range grants {
		typ, action, _ := strings.Cut(g.Permission, ".")
		if action == "view" && !slices.Contains(out, typ) {
			out = append(out, typ)
		}
	}
	return out
}

// whoShown is how many principals a record's page lists per permission unless ?all=1: a record
// everyone may view at 10^5 principals would otherwise be a page of megabytes.
const whoShown = 200

// whoMay is the answer to "who may <action> it", or why there is none.
type whoMay struct {
	Permission string
	Principals []string // the first whoShown, or all
	Total      int
	All        string // the link that lists them all, "" when all are listed
	Problem    string // e.g. the tenant's policy has no such permission
}

// recordPage is the data of a record's page.
type recordPage struct {
	At         moment
	Type, ID   string
	Seq        uint64
	May        []whoMay
	Recipients []string
	History    aggregates.HistoryAnswer
	HCursor    string
}

func (c *Console) record(req *request) (view, error) {
	p := recordPage{At: req.at, Type: req.r.PathValue("type"), ID: req.r.PathValue("id"), HCursor: req.r.URL.Query().Get("c.history")}
	ref := map[string]string{"type": p.Type, "id": p.ID}
	var rec aggregates.RecipientsAnswer
	if err := req.ask(c, "recipients", map[string]any{"record": ref}, &rec); err != nil {
		return view{}, err
	}
	p.Seq, p.Recipients = rec.Seq, rec.Principals
	// Who may view and who may edit are asked at once: each decides every holder of a role
	// giving the permission, the page's largest cost when many may.
	p.May = make([]whoMay, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, action := range []string{"view", "edit"} {
		wg.Go(func() { p.May[i], errs[i] = c.whoMay(req, ref, p.Type+"."+action) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return view{}, err
	}
	if err := req.ask(c, "history", map[string]any{"record": ref, "limit": historyPage, "cursor": p.HCursor}, &p.History); err != nil {
		return view{}, err
	}
	return view{"record", p}, nil
}

// whoMay asks who may perm on the record ref.
func (c *Console) whoMay(req *request, ref map[string]string, perm string) (whoMay, error) {
	w := whoMay{Permission: perm}
	var ans aggregates.PrincipalsAnswer
	err := req.ask(c, "principals", map[string]any{"record": ref, "permission": perm}, &ans)
	switch {
	case err == nil:
		w.Principals, w.Total = ans.Principals, len(ans.Principals)
		if len(w.Principals) > whoShown && req.r.URL.Query().Get("all") == "" {
			w.Principals = w.Principals[:whoShown]
			all := req.r.URL.Query()
			all.Set("all", "1")
			w.All = req.r.URL.Path + "?" + all.Encode() + "#who-" + perm
		}
	case aggregates.ErrorCode(err) == aggregates.CodeUnknownPermission:
		w.Problem = "the tenant's policy has no permission " + perm + ": nobody holds it"
	default:
		return w, err
	}
	return w, nil
}

// open sends the browser to the page of the record named by ?record=<type>/<id>.
func (c *Console) open(req *request) (view, error) {
	typ, id, _ := strings.Cut(req.r.URL.Query().Get("record"), "/")
	if !events.ValidToken(typ) || !events.ValidToken(id) {
		return view{}, aggregates.Errorf(aggregates.CodeInvalidArgument, "record %q: give <type>/<id>, e.g. invoice/inv-1", req.r.URL.Query().Get("record"))
	}
	return view{}, redirectTo(link(recordPath(req.tenant, typ, id), "at", req.at))
}
