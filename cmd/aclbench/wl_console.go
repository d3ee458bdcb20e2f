package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// consoleMoments is how many past moments the as_of pages rotate through.
const consoleMoments = 64

// consolePage is one kind of page of the auditor's console, with the URLs it is asked at.
type consolePage struct {
	name  string
	about string
	urls  []string
}

// runConsole measures the auditor's console (acld's /ui/, served here over the same query
// server as acld's): each page in turn, one browser at a time (an auditor clicking), from the
// HTTP request to the last byte of the rendered HTML. Past moments are drawn at random, so the
// as_of pages mostly pay for a state not yet cached: an auditor's first look at a moment. The
// figure per page is what it costs in all its queries: the tenant page counts every record, a
// principal's page asks permissions, one visible page per type it may view and a history page,
// a record's page principals (twice), recipients and history, the diff two as_of states and a
// pass over the two visible lists per type.
func runConsole(ctx context.Context, b *bench) ([]Result, error) {
	if b.st.remote() {
		return nil, errors.New("console runs in-process (it serves the console over the tool's own query server)")
	}
	if err := b.readSide(ctx); err != nil {
		return nil, err
	}
	if b.st.replay == nil {
		return nil, errors.New("console: the replay service (history, diff, as_of) was not started with the read side")
	}
	base, err := b.st.startQueryServers(ctx)
	if err != nil {
		return nil, err
	}
	last, err := b.st.store.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	pages, err := consolePages(ctx, b, base, last)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer client.CloseIdleConnections()
	var out []Result
	for _, p := range pages {
		if len(p.urls) == 0 {
			continue
		}
		fn := func(ctx context.Context, w int, i int64) error {
			return getConsolePage(ctx, client, p.urls[i%int64(len(p.urls))])
		}
		o := drive(ctx, driveSpec{workers: 1, duration: b.opt.duration, warmup: b.opt.warmup}, fn)
		r := resultOf("console", p.name, "pages/s", o, b.scaleOf())
		r.Notes = append(r.Notes, p.about)
		out = append(out, r)
	}
	return out, nil
}

// consolePages draws the pages asked, over every tenant: its page, the pages of principals at
// level full and limited (now and at past moments after they were registered), of probe
// records, a limited principal's diff from a past moment to now, and a check.
func consolePages(ctx context.Context, b *bench, base string, last uint64) ([]consolePage, error) {
	tenantP := consolePage{name: "tenant", about: "roles, units, records per type (one pass over the tenant's records), 50 principals"}
	full := consolePage{name: "principal-full", about: "a full principal now: grants, 20 visible per type it may view, 25 history events"}
	limited := consolePage{name: "principal-limited", about: "a limited principal now"}
	past := consolePage{name: "principal-limited-as-of", about: "a limited principal at a random past moment (a replay state per moment)"}
	record := consolePage{name: "record", about: "a probe record now: who may view and edit it, recipients, 25 history events"}
	diff := consolePage{name: "diff-limited", about: "a limited principal from a random past moment to now: grants and records gained and lost, causes"}
	check := consolePage{name: "check", about: "a check of a limited principal on a probe record, explained"}
	for _, t := range b.ds.Tenants {
		first, err := b.st.firstSeq(ctx, tenantSubject(t.ID))
		if err != nil {
			return nil, err
		}
		tp := "/ui/t/" + url.PathEscape(t.ID)
		tenantP.urls = append(tenantP.urls, base+tp+"/")
		for _, p := range t.principalsOf(aggregates.LevelFull, 8) {
			full.urls = append(full.urls, base+tp+"/p/"+p)
		}
		ls := t.principalsOf(aggregates.LevelLimited, 8)
		recs := t.probeRecords(8, 11)
		for i, p := range ls {
			limited.urls = append(limited.urls, base+tp+"/p/"+p)
			if len(recs) > 0 {
				r := recs[i%len(recs)]
				check.urls = append(check.urls, base+tp+"/check?"+url.Values{"principal": {p}, "permission": {t.prof.probe.perm}, "record": {r.Type + "/" + r.ID}}.Encode())
			}
		}
		for _, r := range recs {
			record.urls = append(record.urls, base+tp+"/r/"+r.Type+"/"+r.ID)
		}
		// Past moments after every one of these principals was registered (before, their
		// page is not_found).
		from := first
		for _, p := range ls {
			subject, _ := events.Subject(t.ID, events.PrincipalRef(p))
			seq, err := b.st.firstSeq(ctx, subject)
			if err != nil {
				return nil, err
			}
			from = max(from, seq)
		}
		if len(ls) == 0 || last <= from {
			continue
		}
		for i := range consoleMoments {
			rnd := rngFor(b.ds.Seed, t.ID, streamQuery, 77<<32|i)
			at := strconv.FormatUint(from+rnd.Uint64N(last-from+1), 10)
			p := ls[i%len(ls)]
			past.urls = append(past.urls, base+tp+"/p/"+p+"?at="+at)
			diff.urls = append(diff.urls, base+tp+"/diff?"+url.Values{"principal": {p}, "from": {at}}.Encode())
		}
	}
	return []consolePage{tenantP, full, limited, past, record, diff, check}, nil
}

// getConsolePage reads one page to its end; a status other than 200 is an error.
func getConsolePage(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}
