package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
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

// httpQuerier posts to /v1/tenants/{tenant}/{query} over keep-alive connections, at most
// conns of them, each used by one caller at a time. It speaks HTTP/1.1 on the socket itself:
// one write per request, the answer read by its Content-Length (or chunks). net/http's client
// (two goroutines and channels per connection, header maps) took about as much CPU as the
// server it measured, and both share the machine's cores.
type httpQuerier struct {
	addr  string // host:port
	host  string // the Host header
	auth  string // "Authorization: Bearer <token>\r\n", or "" without a token
	idle  chan *httpConn
	slots chan struct{} // one per open connection
}

// newHTTPQuerier keeps up to conns connections open to the server: one per concurrent caller,
// as a gateway or a pool of services would.
// token, when set, is sent as a bearer token (an acld started with --auth).
func newHTTPQuerier(base string, conns int, token string) *httpQuerier {
	u := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	h := &httpQuerier{addr: u, host: u, idle: make(chan *httpConn, conns), slots: make(chan struct{}, conns)}
	if token != "" {
		h.auth = "Authorization: Bearer " + token + "\r\n"
	}
	return h
}

// httpConn is one keep-alive connection with its buffers.
type httpConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

// httpTimeout bounds one request, as the previous client's Timeout did.
const httpTimeout = 30 * time.Second

func (h *httpQuerier) get(ctx context.Context) (*httpConn, error) {
	select {
	case c := <-h.idle:
		return c, nil
	default:
	}
	select {
	case c := <-h.idle:
		return c, nil
	case h.slots <- struct{}{}:
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			<-h.slots
			return nil, err
		}
		return &httpConn{c: nc, r: bufio.NewReaderSize(nc, 4096)}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drop closes a connection that failed or that the server closes.
func (h *httpQuerier) drop(c *httpConn) {
	c.c.Close()
	<-h.slots
}

func (h *httpQuerier) post(ctx context.Context, tenant, query string, body []byte) (status int, answer []byte, err error) {
	c, err := h.get(ctx)
	if err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(httpTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.c.SetDeadline(deadline); err != nil {
		h.drop(c)
		return 0, nil, err
	}
	c.req = append(c.req[:0], "POST /v1/tenants/"...)
	c.req = append(c.req, tenant...)
	c.req = append(c.req, '/')
	c.req = append(c.req, query...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, h.host...)
	c.req = append(c.req, "\r\n"...)
	c.req = append(c.req, h.auth...)
	c.req = append(c.req, "Content-Type: application/json\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if _, err := c.c.Write(c.req); err != nil {
		h.drop(c)
		return 0, nil, err
	}
	status, keep, err := c.readResponse()
	if err != nil {
		h.drop(c)
		return 0, nil, err
	}
	answer = bytes.Clone(c.body)
	if keep {
		h.idle <- c
	} else {
		h.drop(c)
	}
	return status, answer, nil
}

// readResponse reads the status, the headers it needs and the body into c.body; keep says
// whether the connection stays open.
func (c *httpConn) readResponse() (status int, keep bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, false, err
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseUint(string(size), 16, 31)
			if err != nil {
				return 0, false, fmt.Errorf("bad chunk size %q", line)
			}
			if err := c.readN(int(n) + 2); err != nil { // the chunk and its CRLF
				return 0, false, err
			}
			c.body = c.body[:len(c.body)-2]
			if n == 0 {
				return status, keep, nil // no trailers from the query server
			}
		}
	case length >= 0:
		return status, keep, c.readN(length)
	default:
		return 0, false, errors.New("answer without Content-Length or chunks")
	}
}

// readN appends the next n bytes of the connection to c.body.
func (c *httpConn) readN(n int) error {
	start := len(c.body)
	c.body = slices.Grow(c.body, n)[:start+n]
	_, err := io.ReadFull(c.r, c.body[start:])
	return err
}

func (h *httpQuerier) postJSON(ctx context.Context, tenant, query string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	status, data, err := h.post(ctx, tenant, query, b)
	if err != nil {
		return err
	}
	return decodeAnswer(data, status, into)
}

// check asks with a body built by hand, and reads "allowed" from the start of the answer, where
// the server puts it (SPEC section 7's field order); any other answer is decoded in full.
func (h *httpQuerier) check(ctx context.Context, tenant string, q projections.CheckQuery, minSeq uint64) (bool, error) {
	body, ok := appendCheckBody(make([]byte, 0, 160), q, minSeq)
	if !ok {
		var a projections.CheckAnswer
		err := h.postJSON(ctx, tenant, "check", withMinSeq[projections.CheckQuery]{q, minSeq}, &a)
		return a.Allowed, err
	}
	status, data, err := h.post(ctx, tenant, "check", body)
	if err != nil {
		return false, err
	}
	if status == http.StatusOK {
		switch {
		case bytes.HasPrefix(data, []byte(`{"allowed":true,`)):
			return true, nil
		case bytes.HasPrefix(data, []byte(`{"allowed":false,`)):
			return false, nil
		}
	}
	var a projections.CheckAnswer
	err = decodeAnswer(data, status, &a)
	return a.Allowed, err
}

// appendCheckBody writes a check body whose strings need no JSON escape; ok is false otherwise.
func appendCheckBody(dst []byte, q projections.CheckQuery, minSeq uint64) ([]byte, bool) {
	plain := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
		}
		return true
	}
	if !plain(q.Principal) || !plain(q.Permission) || (q.Record != nil && (!plain(q.Record.Type) || !plain(q.Record.ID))) {
		return nil, false
	}
	dst = append(dst, `{"principal":"`...)
	dst = append(dst, q.Principal...)
	dst = append(dst, `","permission":"`...)
	dst = append(dst, q.Permission...)
	dst = append(dst, '"')
	if q.Record != nil {
		dst = append(dst, `,"record":{"type":"`...)
		dst = append(dst, q.Record.Type...)
		dst = append(dst, `","id":"`...)
		dst = append(dst, q.Record.ID...)
		dst = append(dst, `"}`...)
	}
	if minSeq > 0 {
		dst = append(dst, `,"min_seq":`...)
		dst = strconv.AppendUint(dst, minSeq, 10)
	}
	return append(dst, '}'), true
}

func (h *httpQuerier) visible(ctx context.Context, tenant string, q projections.VisibleQuery) (projections.VisibleAnswer, error) {
	var a projections.VisibleAnswer
	err := h.postJSON(ctx, tenant, "visible", q, &a)
	return a, err
}

func (h *httpQuerier) principals(ctx context.Context, tenant string, q projections.PrincipalsQuery) (projections.PrincipalsAnswer, error) {
	var a projections.PrincipalsAnswer
	err := h.postJSON(ctx, tenant, "principals", q, &a)
	return a, err
}

// close closes the idle connections.
func (h *httpQuerier) close() {
	for {
		select {
		case c := <-h.idle:
			h.drop(c)
		default:
			return
		}
	}
}

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
