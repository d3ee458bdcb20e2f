package main

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// getPage fetches a console page with client and returns its status and body.
func getPage(t testing.TB, client *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// section returns the HTML of the first element that opens with open, up to its closing tag
// end ("" when absent): enough to ask what one list of a page holds.
func section(page, open, end string) string {
	i := strings.Index(page, open)
	if i < 0 {
		return ""
	}
	j := strings.Index(page[i:], end)
	if j < 0 {
		return page[i:]
	}
	return page[i : i+j]
}

// TestConsolePages: the console's pages over HTTP, on the demo tenant after case-1 went from
// bob to sam: bob's page before the change lists inv-1 among his invoices and not after; the
// diff names inv-1 lost with the record_unassigned that caused it; inv-1's page before the
// change names bob among those who may view it; the check explains; the export is aclctl's.
func TestConsolePages(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	before, unassigned, assigned := reassignCase1(t, m)
	c := http.DefaultClient
	at := func(seq uint64) string { return "at=" + itoa(seq) }
	invoices := func(page string) string { return section(page, `data-type="invoice"`, "</ul>") }

	status, now := getPage(t, c, base+"/ui/t/demo/p/bob?"+at(assigned))
	if status != 200 || strings.Contains(invoices(now), "inv-1") || !strings.Contains(now, `data-seq="`+itoa(assigned)+`"`) {
		t.Fatalf("bob now: %d, invoices %q", status, invoices(now))
	}
	status, then := getPage(t, c, base+"/ui/t/demo/p/bob?"+at(before))
	if status != 200 || !strings.Contains(invoices(then), ">inv-1</a>") {
		t.Fatalf("bob before the change: %d, invoices %q", status, invoices(then))
	}
	if !strings.Contains(then, "role_assigned") || !strings.Contains(then, "record_registered") {
		t.Errorf("bob's timeline lacks his role and case-1's registration")
	}

	status, diff := getPage(t, c, base+"/ui/t/demo/diff?principal=bob&from="+itoa(before)+"&to="+itoa(assigned))
	row := section(diff, `<tr data-type="invoice">`, "</tr>")
	if status != 200 || !strings.Contains(section(row, `class="lost"`, "</td>"), ">inv-1</a>") {
		t.Fatalf("diff: %d, invoice row %q", status, row)
	}
	causes := section(diff, `id="causes"`, "</table>")
	if !strings.Contains(causes, "record_unassigned") || !strings.Contains(causes, "UnassignRecord") || !strings.Contains(causes, ">"+itoa(unassigned)+"</a>") {
		t.Errorf("diff causes lack the record_unassigned at %d: %s", unassigned, causes)
	}

	status, rec := getPage(t, c, base+"/ui/t/demo/r/invoice/inv-1?"+at(before))
	viewers := section(rec, `data-permission="invoice.view"`, "</ul>")
	if status != 200 || !strings.Contains(viewers, ">bob</a>") {
		t.Fatalf("inv-1 before: %d, viewers %q", status, viewers)
	}
	_, recNow := getPage(t, c, base+"/ui/t/demo/r/invoice/inv-1?"+at(assigned))
	if v := section(recNow, `data-permission="invoice.view"`, "</ul>"); strings.Contains(v, ">bob</a>") || !strings.Contains(v, ">sam</a>") {
		t.Errorf("inv-1 after: viewers %q, want sam and not bob", v)
	}

	status, check := getPage(t, c, base+"/ui/t/demo/check?principal=bob&permission=invoice.view&record=invoice/inv-1&"+at(before))
	if status != 200 || !strings.Contains(check, "<h2 id=\"h-decision\">Allowed</h2>") || !strings.Contains(check, "case-1") {
		t.Errorf("check before: %d %s", status, section(check, `class="decision`, "</section>"))
	}

	resp, err := c.Get(base + "/ui/t/demo/export?principal=bob&format=csv&" + at(assigned))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(rows) < 2 || rows[0][0] != "seq" || rows[len(rows)-1][6] != "record_unassigned" {
		t.Errorf("export: %d %v, %d rows, last %v", resp.StatusCode, err, len(rows), rows[len(rows)-1])
	}

	status, tenant := getPage(t, c, base+"/ui/t/demo/?q=acme.test")
	if status != 200 || !strings.Contains(tenant, ">cora</a>") || strings.Contains(tenant, ">bob</a>") {
		t.Errorf("tenant page searched for acme.test: %d", status)
	}
	for _, bad := range []struct {
		path   string
		status int
	}{{"/ui/t/demo/p/nobody", 404}, {"/ui/t/nope/", 404}, {"/ui/t/demo/p/bob?at=yesterday", 400}, {"/ui/t/demo/export?principal=bob&format=xml", 400}} {
		if status, _ := getPage(t, c, base+bad.path); status != bad.status {
			t.Errorf("%s: %d, want %d", bad.path, status, bad.status)
		}
	}
}

// TestConsoleAuth: with --auth the console asks for a bearer token, keeps it in an HttpOnly
// cookie, and lets in only an identity that may ask the page's queries of the tenant.
func TestConsoleAuth(t *testing.T) {
	ids := writeIdentities(t)
	m := startSecured(t, ids)
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(base + "/ui/t/demo/p/bob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/login?next=") {
		t.Fatalf("without a token: %d to %q, want the login form", resp.StatusCode, loc)
	}
	login := func(token string) (*http.Response, *http.Cookie) {
		t.Helper()
		resp, err := noRedirect.PostForm(base+"/ui/login", url.Values{"token": {token}, "next": {"/ui/t/demo/p/bob"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "acl_console_token" {
				return resp, ck
			}
		}
		return resp, nil
	}
	if resp, ck := login("acl_not-a-token"); resp.StatusCode != http.StatusUnauthorized || ck != nil {
		t.Fatalf("a bad token: %d, cookie %v", resp.StatusCode, ck)
	}
	withCookie := func(ck *http.Cookie, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.AddCookie(ck)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	resp, ck := login(ids.auditorToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/t/demo/p/bob" || ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the auditor's token: %d to %q, cookie %+v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if status, page := withCookie(ck, "/ui/t/demo/p/bob"); status != 200 || !strings.Contains(page, "Principal bob") {
		t.Fatalf("the auditor on bob's page: %d", status)
	}
	// billing may ask check, visible and history, not permissions: bob's page is refused as
	// the query API refuses it.
	_, ck = login(ids.billingToken)
	if status, page := withCookie(ck, "/ui/t/demo/p/bob"); status != http.StatusForbidden || !regexp.MustCompile(`billing.*permissions`).MatchString(page) {
		t.Errorf("billing on bob's page: %d, want 403 naming billing and the query", status)
	}
	if status, _ := withCookie(&http.Cookie{Name: "acl_console_token", Value: "acl_forged"}, "/ui/t/demo/"); status != http.StatusSeeOther {
		t.Errorf("a forged cookie: %d, want the login form", status)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/ui/t/demo/r/invoice/inv-1", nil)
	req.Header.Set("Authorization", "Bearer "+ids.auditorToken)
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a bearer header: %v %v", resp.StatusCode, err)
	}
}
