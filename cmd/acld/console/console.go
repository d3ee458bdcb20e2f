package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/projections"
)

// Querier answers a query for a caller: acld's projections.Server, the entry point of the HTTP
// and NATS query API.
type Querier interface {
	Query(ctx context.Context, caller *aggregates.Caller, tenant, name string, body []byte) ([]byte, error)
}

// Options configures the console.
type Options struct {
	// Authenticate names the caller of a request from its Authorization header, as the query
	// API does (nil: everyone is the unrestricted caller).
	Authenticate func(r *http.Request) (*aggregates.Caller, error)
	// DefaultTenant is offered on the first page (acld --demo: "demo").
	DefaultTenant string
	Logger        *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Console serves the pages under /ui/.
type Console struct {
	q     Querier
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
}

// New returns the console over q.
func New(q Querier, opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Console{q: q, opts: opts, log: opts.Logger, pages: map[string]*template.Template{}}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		c.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return c
}

// Handler serves /ui/ and everything under it.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /ui/login", c.loginForm)
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.logout)
	mux.HandleFunc("GET /ui/{$}", c.page(c.index))
	mux.HandleFunc("GET /ui/t/{tenant}/{$}", c.page(c.tenant))
	mux.HandleFunc("GET /ui/t/{tenant}/p/{principal}", c.page(c.principal))
	mux.HandleFunc("GET /ui/t/{tenant}/r/{type}/{id}", c.page(c.record))
	mux.HandleFunc("GET /ui/t/{tenant}/diff", c.page(c.diff))
	mux.HandleFunc("GET /ui/t/{tenant}/check", c.page(c.check))
	mux.HandleFunc("GET /ui/t/{tenant}/open", c.page(c.open))
	mux.HandleFunc("GET /ui/t/{tenant}/export", c.export)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, aggregates.Errorf(aggregates.CodeNotFound, "no page %s", r.URL.Path))
	})
	return securityHeaders(mux)
}

// securityHeaders: the pages load nothing from elsewhere and run no script, and say so.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// request is one page request: who asks, about which tenant, at which moment.
type request struct {
	ctx    context.Context
	r      *http.Request
	caller *aggregates.Caller
	tenant string
	at     moment
}

// view is what a page handler returns: the template and its data.
type view struct {
	page string
	data any
}

// page wraps a page handler: it authenticates, reads the moment, renders the answer or the
// error.
func (c *Console) page(fn func(req *request) (view, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := c.begin(w, r)
		if err != nil {
			return
		}
		v, err := fn(req)
		var to redirect
		if errors.As(err, &to) {
			http.Redirect(w, r, string(to), http.StatusSeeOther)
			return
		}
		if err == nil && v.page == "" {
			err = fmt.Errorf("console: %s answered no page", r.URL.Path)
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		c.render(w, r, http.StatusOK, v.page, v.data)
	}
}

// begin authenticates the request (redirecting to the login form when it has no valid
// credentials) and reads its moment; it has answered when it returns an error.
func (c *Console) begin(w http.ResponseWriter, r *http.Request) (*request, error) {
	caller, err := c.authenticate(r)
	if aggregates.ErrorCode(err) == aggregates.CodeUnauthenticated {
		http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, err
	}
	if err != nil {
		c.fail(w, r, err)
		return nil, err
	}
	at, err := parseMoment("at", r.URL.Query().Get("at"))
	if err != nil {
		c.fail(w, r, err)
		return nil, err
	}
	return &request{ctx: r.Context(), r: r, caller: caller, tenant: r.PathValue("tenant"), at: at}, nil
}

// ask runs one query of the page's tenant at the page's moment and decodes its answer.
func (req *request) ask(c *Console, name string, body map[string]any, out any) error {
	return req.askAt(c, name, body, req.at, out)
}

func (req *request) askAt(c *Console, name string, body map[string]any, at moment, out any) error {
	if body == nil {
		body = map[string]any{}
	}
	if !at.now() {
		body["as_of"] = at.wire()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ans, err := c.q.Query(req.ctx, req.caller, req.tenant, name, b)
	if err != nil {
		return err
	}
	return json.Unmarshal(ans, out)
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Code    string
	Message string
}

// fail renders err as a page with its query API status.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := projections.HTTPStatus(err)
	code, msg := aggregates.ErrorCode(err), err.Error()
	var e *aggregates.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	if status >= 500 {
		c.log.Error("console page failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", errorPage{Status: status, Code: string(code), Message: msg})
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	t := c.pages[page]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", layoutData{Page: data, Path: r.URL.Path, Query: r.URL.Query(), Tenant: r.PathValue("tenant")}); err != nil {
		c.log.Error("console template", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// layoutData is what the layout reads: the page's own data, and where it is.
type layoutData struct {
	Page   any
	Path   string
	Query  url.Values
	Tenant string
}
