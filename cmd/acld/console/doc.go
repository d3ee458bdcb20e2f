// Package console is the auditor's console that acld serves at /ui/ (SPEC section 6): read-only
// pages over the live data at any moment, rendered on the server with html/template, its
// stylesheet embedded in the binary (no script, no CDN: it works offline and with JavaScript
// off).
//
// # A client of the query engine
//
// Every page is made of queries asked through the same entry point as the HTTP and NATS query
// API (Querier: acld's projections.Server), with the caller of the browser, so the console has
// no rules of its own and no reads of its own: what a page shows is what check, visible,
// permissions, principals, recipients, tenant, history and diff answer, with as_of set to the
// page's moment. A caller that may not ask a query of a tenant is refused on the page exactly
// as over HTTP.
//
// # Pages (all GET; the moment is ?at=, a stream sequence or an RFC 3339 time; none: now)
//
//	/ui/                                   choose a tenant
//	/ui/t/{tenant}/                        roles, units, record types with counts, principals (search: ?q=)
//	/ui/t/{tenant}/p/{principal}           kind, level, roles, grants with sources and events,
//	                                       visible records per type (paged), history (paged)
//	/ui/t/{tenant}/r/{type}/{id}           who may view and edit it, recipients, history
//	/ui/t/{tenant}/diff?principal=&from=&to=   grants added and removed, records gained and lost, causes
//	/ui/t/{tenant}/check?principal=&permission=&record=   the decision and its explanation
//	/ui/t/{tenant}/export?principal=|record=&format=csv|jsonl   a history as aclctl export writes it
//
// # Who may look
//
// The console authenticates like the query API (Options.Authenticate: acld's AuthenticateHTTP).
// A browser cannot send a bearer header by itself, so /ui/login takes the token once in a form,
// checks it, and keeps it in an HttpOnly, SameSite=Strict cookie scoped to /ui/ (Secure over
// TLS); every page copies it into the Authorization header of its own request and authenticates
// that, so the token is checked by the same code on every page, and a script on the page could
// not read it. A request that already carries an Authorization header uses it. Without --auth,
// the authenticator lets everyone in (acld then listens on loopback only).
package console
