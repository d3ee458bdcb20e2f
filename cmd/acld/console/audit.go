package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
	"github.com/acl-es/acl/replay"
)

// diffPage is the data of the diff page.
type diffPage struct {
	Principal, From, To string
	Answer              *aggregates.DiffAnswer // nil until the form is filled
}

func (c *Console) diff(req *request) (view, error) {
	q := req.r.URL.Query()
	p := diffPage{Principal: q.Get("principal"), From: q.Get("from"), To: q.Get("to")}
	if p.Principal == "" || p.From == "" {
		return view{"diff", p}, nil
	}
	from, err := parseMoment("from", p.From)
	if err != nil {
		return view{}, err
	}
	to, err := parseMoment("to", p.To)
	if err != nil {
		return view{}, err
	}
	body := map[string]any{"principal": p.Principal, "from": from.wire(), "to": to.wire()}
	if to.now() {
		body["to"] = time.Now().UTC().Format(time.RFC3339Nano) // the last event: now
	}
	var a aggregates.DiffAnswer
	if err := req.askAt(c, "diff", body, moment{}, &a); err != nil {
		return view{}, err
	}
	p.Answer = &a
	return view{"diff", p}, nil
}

// checkPage is the data of the check page.
type checkPage struct {
	At                            moment
	Principal, Permission, Record string
	Answer                        *aggregates.CheckAnswer
}

func (c *Console) check(req *request) (view, error) {
	q := req.r.URL.Query()
	p := checkPage{At: req.at, Principal: q.Get("principal"), Permission: q.Get("permission"), Record: q.Get("record")}
	if p.Principal == "" || p.Permission == "" {
		return view{"check", p}, nil
	}
	body := map[string]any{"principal": p.Principal, "permission": p.Permission}
	if p.Record != "" {
		typ, id, ok := strings.Cut(p.Record, "/")
		if !ok {
			return view{}, aggregates.Errorf(aggregates.CodeInvalidArgument, "record %q: give <type>/<id>, e.g. invoice/inv-1", p.Record)
		}
		body["record"] = map[string]string{"type": typ, "id": id}
	}
	var a aggregates.CheckAnswer
	if err := req.ask(c, "check", body, &a); err != nil {
		return view{}, err
	}
	p.Answer = &a
	return view{"check", p}, nil
}

// export writes a principal's or a record's whole history up to the moment, as aclctl export
// does (the same Exporter), page by page from the history query.
func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	req, err := c.begin(w, r)
	if err != nil {
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if !slices.Contains(replay.ExportFormats, format) {
		c.fail(w, r, aggregates.Errorf(aggregates.CodeInvalidArgument, "format %q: csv or jsonl", format))
		return
	}
	body, name := map[string]any{}, ""
	switch p, rec := q.Get("principal"), q.Get("record"); {
	case p != "" && rec == "":
		body["principal"], name = p, "principal-"+p
	case rec != "" && p == "":
		typ, id, _ := strings.Cut(rec, "/")
		body["record"], name = events.RecordRef{Type: typ, ID: id}, "record-"+typ+"-"+id
	default:
		c.fail(w, r, aggregates.Errorf(aggregates.CodeInvalidArgument, "export: give principal=<id> or record=<type>/<id>"))
		return
	}
	body["limit"] = replay.MaxHistoryLimit
	// The first page fixes the moment for the rest, and answers errors before any byte is sent.
	var first aggregates.HistoryAnswer
	if err := req.ask(c, "history", body, &first); err != nil {
		c.fail(w, r, err)
		return
	}
	ctype := map[string]string{"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}[format]
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-seq%d.%s"`, req.tenant, name, first.Seq, format))
	x, _ := replay.NewExporter(w, format)
	err = c.exportPages(req, body, first, x)
	if ferr := x.Flush(); err == nil {
		err = ferr
	}
	if err != nil && req.ctx.Err() == nil {
		c.log.Error("console export stopped", "tenant", req.tenant, "err", err) // the status is sent
	}
}

func (c *Console) exportPages(req *request, body map[string]any, page aggregates.HistoryAnswer, x *replay.Exporter) error {
	at := moment{seq: page.Seq}
	for {
		for _, e := range page.Events {
			if err := x.Write(e); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		body["cursor"] = page.NextCursor
		page = aggregates.HistoryAnswer{}
		if err := req.askAt(c, "history", body, at, &page); err != nil {
			return err
		}
		if err := context.Cause(req.ctx); err != nil {
			return err
		}
	}
}
