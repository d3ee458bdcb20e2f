package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// The query side of the client. A query goes over NATS request-reply to
// acl.queries.<tenant>.<query> (the connection's credentials say who asks), or, on a client
// made by UseHTTP or NewHTTPClient, as POST <base>/v1/tenants/<tenant>/<query> with a bearer
// token. Answers and errors are the same on both (SPEC section 7, cmd/acld/openapi.json).
// Queries change nothing, so a query that got no answer, or answered unavailable or
// not_caught_up (a read model behind the min_seq asked), is asked again with backoff until the
// context ends.

// QueryPrefix is the root of query subjects: acl.queries.<tenant>.<query>.
const QueryPrefix = "acl.queries"

// QuerySubject is the NATS subject of a tenant's query.
func QuerySubject(tenant, query string) string { return QueryPrefix + "." + tenant + "." + query }

// httpQueries is where a client sends its queries over HTTP.
type httpQueries struct {
	base  string // http(s)://host:port, without a trailing slash
	token string // bearer token; "" sends none
	hc    *http.Client
}

// UseHTTP returns a copy of c that sends its queries over HTTP to base (acld's --http-listen,
// as http://host:port or https://host:port) with the bearer token of the caller's identity
// ("" sends none: acld without --auth); commands still go over c's NATS connection. hc nil is
// a client of its own that keeps connections open for many concurrent queries.
func (c *Client) UseHTTP(base, token string, hc *http.Client) *Client {
	cp := *c
	cp.http = &httpQueries{base: strings.TrimRight(base, "/"), token: token, hc: hc}
	if hc == nil {
		cp.http.hc = defaultHTTPClient()
	}
	return &cp
}

// NewHTTPClient returns a client for queries only, over HTTP (UseHTTP): a command answers
// invalid_argument, as it has no NATS connection to go on.
func NewHTTPClient(base, token string, hc *http.Client) *Client {
	return (&Client{Wait: 30 * time.Second}).UseHTTP(base, token, hc)
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The default keeps 2 idle connections per host: a service asking many checks at once
	// would open and close connections all the time.
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	return &http.Client{Transport: t}
}

// QueryOption adds min_seq or as_of to a query.
type QueryOption func(*queryOptions)

type queryOptions struct {
	minSeq uint64
	asOf   *aggregates.Moment
}

// MinSeq makes the query wait until the read model has applied stream sequence seq (bounded by
// acld's --query-wait, then not_caught_up, which the client asks again).
func MinSeq(seq uint64) QueryOption {
	return func(o *queryOptions) { o.minSeq = max(o.minSeq, seq) }
}

// After reads the writes of commands: the query waits until the read model reflects every
// result given (MinSeq of the highest Seq).
func After(results ...Result) QueryOption {
	return func(o *queryOptions) {
		for _, r := range results {
			o.minSeq = max(o.minSeq, r.Seq)
		}
	}
}

// AsOf answers on the state at a moment of the stream's history (aggregates.AtSeq,
// aggregates.AtTime): as_of.
func AsOf(at aggregates.Moment) QueryOption {
	return func(o *queryOptions) { o.asOf = &at }
}

// AsOfSeq is AsOf(aggregates.AtSeq(seq)).
func AsOfSeq(seq uint64) QueryOption { return AsOf(aggregates.AtSeq(seq)) }

// AsOfTime is AsOf(aggregates.AtTime(t)): the state after the last event at or before t.
func AsOfTime(t time.Time) QueryOption { return AsOf(aggregates.AtTime(t)) }

func readOptions(opts []QueryOption) queryOptions {
	var o queryOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// withOptions adds min_seq and as_of to the JSON object body (a query struct without them).
func withOptions(body []byte, o queryOptions) []byte {
	if o.minSeq == 0 && o.asOf == nil {
		return body
	}
	body = bytes.TrimRight(body, " \n")
	if len(body) < 2 || body[len(body)-1] != '}' {
		return body // not an object: the server says so
	}
	out := append([]byte(nil), body[:len(body)-1]...)
	sep := func() {
		if len(out) > 1 {
			out = append(out, ',')
		}
	}
	if o.minSeq > 0 {
		sep()
		out = append(out, `"min_seq":`...)
		out = strconv.AppendUint(out, o.minSeq, 10)
	}
	if o.asOf != nil {
		sep()
		at, _ := o.asOf.MarshalJSON() // cannot fail: a number or a formatted time
		out = append(out, `"as_of":`...)
		out = append(out, at...)
	}
	return append(out, '}')
}

// Query sends a query by name with a JSON body (min_seq and as_of from opts added to it) and
// decodes its answer into answer (nil: not decoded). It serves queries the typed methods do
// not name; an error answer is an *aggregates.Error.
func (c *Client) Query(ctx context.Context, tenant, query string, body, answer any, opts ...QueryOption) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("commands: %s: encode: %w", query, err)
	}
	data, err := c.QueryRaw(ctx, tenant, query, withOptions(raw, readOptions(opts)))
	if err != nil || answer == nil {
		return err
	}
	if err := json.Unmarshal(data, answer); err != nil {
		return fmt.Errorf("commands: %s: malformed answer %.100q: %w", query, data, err)
	}
	return nil
}

// queryAs sends body (min_seq and as_of from opts added) and decodes the answer as A.
func queryAs[A any](ctx context.Context, c *Client, tenant, query string, body any, opts []QueryOption) (A, error) {
	var a A
	err := c.Query(ctx, tenant, query, body, &a, opts...)
	return a, err
}

// QueryRaw sends a query's JSON body as it is and returns the JSON answer; an error answer is
// an *aggregates.Error. Retries as the typed queries.
func (c *Client) QueryRaw(ctx context.Context, tenant, query string, body []byte) ([]byte, error) {
	if !events.ValidToken(tenant) || !events.ValidToken(query) {
		return nil, &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: query,
			Message: fmt.Sprintf("tenant %.70q and query %.70q must be 1 to 64 of A-Z a-z 0-9 _ -", tenant, query)}
	}
	if c.http == nil && c.nc == nil {
		return nil, &aggregates.Error{Code: aggregates.CodeInvalidArgument, Op: query, Message: "the client has neither a NATS connection nor an HTTP address"}
	}
	// One context per attempt, bounded by the query's deadline: a context of its own for the
	// whole query would cost a timer per query for nothing.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.wait())
	}
	backoff := 10 * time.Millisecond
	for {
		data, err := c.queryOnce(ctx, deadline, tenant, query, body)
		if !queryRetryable(err) {
			return data, err
		}
		// Jitter: the clients a restart turned away do not all come back at the same moment.
		pause := backoff/2 + rand.N(backoff/2+1)
		left := time.Until(deadline)
		if left <= 0 {
			return nil, gaveUp(query, err, context.DeadlineExceeded)
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, gaveUp(query, err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *Client) wait() time.Duration {
	if c.Wait > 0 {
		return c.Wait
	}
	return 30 * time.Second
}

// gaveUp is the error of a query retried until its context ended: the last answer's error when
// it was one (not_caught_up, unavailable), else unavailable.
func gaveUp(query string, last, ctxErr error) error {
	if e, ok := asError(last); ok {
		return e
	}
	return &aggregates.Error{Code: aggregates.CodeUnavailable, Op: query,
		Message: "no answer before the deadline: " + last.Error(), Err: errors.Join(last, ctxErr)}
}

// queryOnce is one request, bounded by AttemptWait and by the query's deadline.
func (c *Client) queryOnce(ctx context.Context, deadline time.Time, tenant, query string, body []byte) ([]byte, error) {
	wait := c.AttemptWait
	if wait <= 0 {
		wait = attemptWait
	}
	if d := time.Now().Add(wait); d.Before(deadline) {
		deadline = d
	}
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.http != nil {
		return c.http.query(actx, tenant, query, body)
	}
	msg, err := c.violations.Request(actx, c.nc, QuerySubject(tenant, query), body)
	if err != nil {
		var refused *aggregates.Error
		if errors.As(err, &refused) {
			refused.Op = query
			return nil, refused
		}
		return nil, fmt.Errorf("commands: %s: request: %w", query, err)
	}
	if e := answerError(query, msg.Data); e != nil {
		return nil, e
	}
	return msg.Data, nil
}

// answerError returns the error an answer carries ({"error":{"code":..,"message":..}}), nil
// for an answer: no answer's first field is "error", so the whole answer is not decoded twice.
func answerError(query string, data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte(`{"error"`)) {
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return fmt.Errorf("commands: %s: malformed answer %.100q", query, data)
		}
		return nil
	}
	var a struct {
		Error *WireError `json:"error"`
	}
	if err := json.Unmarshal(data, &a); err != nil || a.Error == nil {
		return fmt.Errorf("commands: %s: malformed error answer %.100q", query, data)
	}
	return &aggregates.Error{Code: a.Error.Code, Op: query, Message: a.Error.Message}
}

func (h *httpQueries) query(ctx context.Context, tenant, query string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/v1/tenants/"+tenant+"/"+query, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("commands: %s: %w", query, err)
	}
	req.Header["Content-Type"] = jsonType
	if h.token != "" {
		req.Header["Authorization"] = []string{"Bearer " + h.token}
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("commands: %s: %w", query, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("commands: %s: read the answer: %w", query, err)
	}
	if resp.StatusCode == http.StatusOK {
		return data, nil
	}
	if e := answerError(query, data); e != nil {
		if _, ok := asError(e); ok {
			return nil, e
		}
	}
	// Not acld's answer (a proxy, a load balancer): a gateway that has no server behind it is
	// unavailable, anything else is internal.
	code := aggregates.CodeInternal
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		code = aggregates.CodeUnavailable
	}
	return nil, &aggregates.Error{Code: code, Op: query, Message: fmt.Sprintf("HTTP %s: %.200s", resp.Status, data)}
}

var jsonType = []string{"application/json"}

// queryRetryable: no answer, or an answer that another try (on this or another acld) may
// improve. Queries write nothing, so asking again is always safe.
func queryRetryable(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := asError(err); ok {
		return e.Code == aggregates.CodeUnavailable || e.Code == aggregates.CodeNotCaughtUp
	}
	if retryable(err) || errors.Is(err, nats.ErrNoServers) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}
