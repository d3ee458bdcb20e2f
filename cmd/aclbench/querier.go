package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/acl-es/acl/projections"
)

// querier asks the read side a query by one way: the engine in-process, HTTP, or NATS. The
// query workloads run over any of them, so the cost of each layer shows as a difference.
type querier interface {
	check(ctx context.Context, tenant string, q projections.CheckQuery, minSeq uint64) (bool, error)
	visible(ctx context.Context, tenant string, q projections.VisibleQuery) (projections.VisibleAnswer, error)
	principals(ctx context.Context, tenant string, q projections.PrincipalsQuery) (projections.PrincipalsAnswer, error)
}

// engineQuerier calls the engine directly: the floor under every other way.
type engineQuerier struct{ e *projections.Engine }

func (q engineQuerier) check(ctx context.Context, tenant string, c projections.CheckQuery, minSeq uint64) (bool, error) {
	if minSeq > 0 {
		if err := q.e.WaitFor(ctx, minSeq); err != nil {
			return false, err
		}
	}
	a, err := q.e.Check(ctx, tenant, c)
	return a.Allowed, err
}

func (q engineQuerier) visible(ctx context.Context, tenant string, v projections.VisibleQuery) (projections.VisibleAnswer, error) {
	return q.e.Visible(ctx, tenant, v)
}

func (q engineQuerier) principals(ctx context.Context, tenant string, p projections.PrincipalsQuery) (projections.PrincipalsAnswer, error) {
	return q.e.Principals(ctx, tenant, p)
}

// queryError is an error answer of the HTTP or NATS query API (SPEC section 6).
type queryError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"-"`
}

func (e *queryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
	}
	return e.Code + ": " + e.Message
}

// withMinSeq is a query body with min_seq, as the wire format takes it.
type withMinSeq[T any] struct {
	Q      T
	MinSeq uint64
}

func (w withMinSeq[T]) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.Q)
	if err != nil || w.MinSeq == 0 {
		return b, err
	}
	// Add "min_seq" to the query's object.
	return append(append(b[:len(b)-1], fmt.Sprintf(`,"min_seq":%d`, w.MinSeq)...), '}'), nil
}

// decodeAnswer reads an answer or its error object.
func decodeAnswer(data []byte, status int, into any) error {
	if bytes.Contains(data[:min(len(data), 16)], []byte(`"error"`)) || status >= 400 {
		var e struct {
			Error *queryError `json:"error"`
		}
		if err := json.Unmarshal(data, &e); err == nil && e.Error != nil {
			e.Error.Status = status
			return e.Error
		}
		return &queryError{Code: "other", Message: truncate(string(data), 200), Status: status}
	}
	return json.Unmarshal(data, into)
}

// httpQuerier posts to /v1/tenants/{tenant}/{query} over keep-alive connections.
type httpQuerier struct {
	base   string
	client *http.Client
}

// newHTTPQuerier keeps up to conns connections open to the server: one per concurrent caller,
// as a gateway or a pool of services would.
func newHTTPQuerier(base string, conns int) *httpQuerier {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	return &httpQuerier{base: strings.TrimSuffix(base, "/"), client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (h *httpQuerier) post(ctx context.Context, tenant, query string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/v1/tenants/"+tenant+"/"+query, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body) // read to the end, so the connection is reused
	if err != nil {
		return err
	}
	return decodeAnswer(data, resp.StatusCode, into)
}

func (h *httpQuerier) check(ctx context.Context, tenant string, q projections.CheckQuery, minSeq uint64) (bool, error) {
	var a projections.CheckAnswer
	err := h.post(ctx, tenant, "check", withMinSeq[projections.CheckQuery]{q, minSeq}, &a)
	return a.Allowed, err
}

func (h *httpQuerier) visible(ctx context.Context, tenant string, q projections.VisibleQuery) (projections.VisibleAnswer, error) {
	var a projections.VisibleAnswer
	err := h.post(ctx, tenant, "visible", q, &a)
	return a, err
}

func (h *httpQuerier) principals(ctx context.Context, tenant string, q projections.PrincipalsQuery) (projections.PrincipalsAnswer, error) {
	var a projections.PrincipalsAnswer
	err := h.post(ctx, tenant, "principals", q, &a)
	return a, err
}

func (h *httpQuerier) close() { h.client.CloseIdleConnections() }

// natsQuerier sends requests on acl.queries.<tenant>.<query>, spreading callers over a few
// connections round-robin.
type natsQuerier struct {
	conns []*nats.Conn
	next  *atomic.Uint64
}

func newNATSQuerier(conns []*nats.Conn) natsQuerier {
	return natsQuerier{conns: conns, next: new(atomic.Uint64)}
}

func (n natsQuerier) request(ctx context.Context, tenant, query string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	nc := n.conns[n.next.Add(1)%uint64(len(n.conns))]
	m, err := nc.RequestWithContext(ctx, "acl.queries."+tenant+"."+query, b)
	if err != nil {
		return err
	}
	return decodeAnswer(m.Data, 0, into)
}

func (n natsQuerier) check(ctx context.Context, tenant string, q projections.CheckQuery, minSeq uint64) (bool, error) {
	var a projections.CheckAnswer
	err := n.request(ctx, tenant, "check", withMinSeq[projections.CheckQuery]{q, minSeq}, &a)
	return a.Allowed, err
}

func (n natsQuerier) visible(ctx context.Context, tenant string, q projections.VisibleQuery) (projections.VisibleAnswer, error) {
	var a projections.VisibleAnswer
	err := n.request(ctx, tenant, "visible", q, &a)
	return a, err
}

func (n natsQuerier) principals(ctx context.Context, tenant string, q projections.PrincipalsQuery) (projections.PrincipalsAnswer, error) {
	var a projections.PrincipalsAnswer
	err := n.request(ctx, tenant, "principals", q, &a)
	return a, err
}
