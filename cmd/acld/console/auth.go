package console

import (
	"net/http"
	"strings"

	"github.com/acl-es/acl/aggregates"
)

// tokenCookie holds the bearer token a browser logged in with.
const tokenCookie = "acl_console_token"

// authenticate names the caller: the request's own Authorization header, else the token of
// the login cookie, checked by the query API's authenticator.
func (c *Console) authenticate(r *http.Request) (*aggregates.Caller, error) {
	if c.opts.Authenticate == nil {
		return nil, nil
	}
	if r.Header.Get("Authorization") == "" {
		if ck, err := r.Cookie(tokenCookie); err == nil && ck.Value != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+ck.Value)
		}
	}
	return c.opts.Authenticate(r)
}

// loginPage is the data of the login form.
type loginPage struct {
	Next    string
	Problem string
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the token with the authenticator before keeping it.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if c.opts.Authenticate != nil {
		check := r.Clone(r.Context())
		check.Header.Set("Authorization", "Bearer "+token)
		if _, err := c.opts.Authenticate(check); err != nil || token == "" {
			c.render(w, r, http.StatusUnauthorized, "login", loginPage{Next: next, Problem: "That token is no identity's. Paste the bearer token of an identity with query rights on the tenant."})
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: token, Path: "/ui/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console (no open redirect).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}
