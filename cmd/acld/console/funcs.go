package console

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// redirect is a page's answer that sends the browser elsewhere.
type redirect string

func (r redirect) Error() string { return "see " + string(r) }

func redirectTo(path string) error { return redirect(path) }

// funcs are the templates' helpers.
var funcs = map[string]any{
	"link":      link,
	"short":     shortID,
	"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"data":      func(d json.RawMessage) string { return string(d) },
	"before":    func(seq uint64) uint64 { return max(seq, 2) - 1 },
	"keep":      keep,
	"aggLink":   aggLink,
	"join":      strings.Join,
	"principal": principalPath,
	"record":    recordPath,
	"seqs":      func(seq uint64) string { return strconv.FormatUint(seq, 10) },
	"more":      func(count int, ids []string) int { return count - len(ids) },
	"asof":      asOf,
	"timeline":  timeline,
	"history": func(d aggregates.DiffAnswer) aggregates.HistoryAnswer {
		return aggregates.HistoryAnswer{Events: d.Events}
	},
}

// asOfData is the line that says which moment a page shows, with links to step back and to now.
type asOfData struct {
	Seq             uint64
	Now             bool
	Earlier, Latest string
}

func asOf(l layoutData, seq uint64) asOfData {
	q := url.Values{}
	for _, p := range keep(l.Query) {
		q.Add(p.Name, p.Value)
	}
	latest := l.Path
	if len(q) > 0 {
		latest += "?" + q.Encode()
	}
	q.Set("at", strconv.FormatUint(max(seq, 2)-1, 10))
	return asOfData{Seq: seq, Now: l.Query.Get("at") == "", Earlier: l.Path + "?" + q.Encode(), Latest: latest}
}

// timelineData is a page of history as the timeline shows it.
type timelineData struct {
	Tenant, Path, Caption string
	Events                []aggregates.HistoryEvent
	Next                  string // the next page's link, "" at the end
}

// timeline's sequences link to the page at that moment: the page shown, or path when given.
func timeline(l layoutData, caption string, h aggregates.HistoryAnswer, path ...string) timelineData {
	d := timelineData{Tenant: l.Tenant, Path: l.Path, Caption: caption, Events: h.Events}
	if len(path) > 0 {
		d.Path = path[0]
	}
	if h.NextCursor != "" {
		q := url.Values{}
		for k, vs := range l.Query {
			q[k] = vs
		}
		q.Set("c.history", h.NextCursor)
		d.Next = l.Path + "?" + q.Encode() + "#timeline"
	}
	return d
}

// link is path with the query parameters given as name, value pairs; empty values are left out.
func link(path string, kv ...any) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		var s string
		switch x := kv[i+1].(type) {
		case string:
			s = x
		case uint64:
			if x > 0 {
				s = strconv.FormatUint(x, 10)
			}
		case moment:
			s = x.String()
		case interface{ String() string }:
			s = x.String()
		}
		if s != "" {
			v.Set(kv[i].(string), s)
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// shortID shortens an event id (a UUIDv7: time first) to its random tail, enough to tell the
// events of one page apart; the full id is in the title.
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// param is one hidden input of the moment form.
type param struct{ Name, Value string }

// keep lists the query parameters the moment form carries over: the page's own, not the moment
// and not the paging cursors (another moment starts from the first page).
func keep(q url.Values) []param {
	var out []param
	for name, vs := range q {
		if name == "at" || strings.HasPrefix(name, "c.") {
			continue
		}
		for _, v := range vs {
			out = append(out, param{name, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func principalPath(tenant, id string) string {
	return "/ui/t/" + url.PathEscape(tenant) + "/p/" + url.PathEscape(id)
}

func recordPath(tenant, typ, id string) string {
	return "/ui/t/" + url.PathEscape(tenant) + "/r/" + url.PathEscape(typ) + "/" + url.PathEscape(id)
}

// aggLink is the console page of an event's aggregate ("" for the tenant).
func aggLink(tenant string, a events.AggregateRef) string {
	switch a.Kind {
	case "principal":
		return principalPath(tenant, a.ID)
	case "record":
		return recordPath(tenant, a.Type, a.ID)
	}
	return "/ui/t/" + url.PathEscape(tenant) + "/"
}
