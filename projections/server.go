package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acl-es/acl/aggregates"
	"github.com/acl-es/acl/events"
)

// MaxBody is the largest query body (SPEC section 5: the NATS default payload).
const MaxBody = 1 << 20

// Moment is an as_of as the wire gives it: a stream sequence, or (Time set, UTC) an RFC 3339
// time meaning the last event at or before it.
type Moment = aggregates.Moment

// AsOfFunc returns an engine over the state at a moment and the function to call when the query
// is done with it. It resolves times and waits for sequences the live model has not applied.
type AsOfFunc func(ctx context.Context, tenant string, at Moment) (*Engine, func(), error)

// Request is one query as a handler sees it, whatever the transport.
type Request struct {
	Tenant string
	Query  string
	Body   []byte  // the whole JSON body; decode it with DecodeBody into a struct embedding Common
	Engine *Engine // the live engine, or the engine at as_of when the body has one
	AsOf   *Moment // nil when the body has none, or the handler reads it itself (OwnAsOf)
}

// Handler answers one named query; the answer is encoded as JSON.
type Handler func(ctx context.Context, r Request) (any, error)

// Common holds the fields every query body may carry. Query body structs embed it, so that
// decoding them strictly accepts these fields and rejects every other unknown one.
type Common struct {
	MinSeq uint64          `json:"min_seq,omitempty"`
	AsOf   json.RawMessage `json:"as_of,omitempty"`
}

// ServerOptions configures a Server. Zero values take the defaults.
type ServerOptions struct {
	AsOf         AsOfFunc              // nil: as_of answers invalid_argument
	Registerer   prometheus.Registerer // nil: no metrics
	Logger       *slog.Logger          // default slog.Default()
	QueryTimeout time.Duration         // default 10 s
	Concurrency  int                   // NATS queries served at once; default 64
	// IdentifyNATS names the caller of a NATS request from its headers, Authenticate the
	// caller of an HTTP request from its credentials (SPEC section 5, "Callers"): a nil
	// caller is unrestricted, an error (unauthenticated) is the answer. nil: unrestricted.
	IdentifyNATS func(h nats.Header) (*aggregates.Caller, error)
	Authenticate func(r *http.Request) (*aggregates.Caller, error)
	// Ready, when set, must also hold for /readyz to answer 200 (acld: the command service
	// is subscribed); it returns what is missing, "" when ready.
	Ready func() string
}

// Server answers queries over HTTP and NATS with the same parsing and handlers.
type Server struct {
	engine  *Engine
	proj    *Projector
	opts    ServerOptions
	log     *slog.Logger
	metrics *serverMetrics

	mu       sync.RWMutex
	handlers map[string]handler

	natsMu sync.Mutex
	stops  []func()
}

// NewServer returns a server answering with engine; proj (nil allowed) gives readiness and the
// projector metrics.
func NewServer(engine *Engine, proj *Projector, o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	s := &Server{engine: engine, proj: proj, opts: o, log: o.Logger, handlers: map[string]handler{}}
	s.metrics = newServerMetrics(o.Registerer, proj, o.Logger)
	s.Handle("check", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			CheckQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Check(ctx, r.Tenant, b.CheckQuery)
	}, fastCheck)
	s.Handle("visible", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			VisibleQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Visible(ctx, r.Tenant, b.VisibleQuery)
	})
	s.Handle("permissions", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			PermissionsQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Permissions(ctx, r.Tenant, b.PermissionsQuery)
	})
	s.Handle("principals", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			PrincipalsQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Principals(ctx, r.Tenant, b.PrincipalsQuery)
	})
	s.Handle("tenant", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			TenantQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Tenant(ctx, r.Tenant, b.TenantQuery)
	})
	s.Handle("recipients", func(ctx context.Context, r Request) (any, error) {
		var b struct {
			Common
			RecipientsQuery
		}
		if err := DecodeBody(r.Body, &b); err != nil {
			return nil, err
		}
		return r.Engine.Recipients(ctx, r.Tenant, b.RecipientsQuery)
	})
	return s
}

// handler is a registered query handler and how the server calls it.
type handler struct {
	h       Handler
	ownAsOf bool // the handler reads as_of itself: the server does not build the state at as_of
	check   bool // the built-in check: the server may answer it without the handler (server_check.go)
}

// HandleOption changes how the server calls a handler.
type HandleOption func(*handler)

// OwnAsOf says that the handler answers as_of itself (replay's history and diff read it from the
// body as a bound of their own): the server passes the live engine and no AsOf, and does not ask
// ServerOptions.AsOf for a state nothing would read.
func OwnAsOf() HandleOption { return func(h *handler) { h.ownAsOf = true } }

// fastCheck marks the built-in check handler; a handler registered later under "check" replaces
// the fast path too.
func fastCheck(h *handler) { h.check = true }

// Handle registers (or replaces) the handler of a query name: replay adds history and diff.
func (s *Server) Handle(name string, h Handler, opts ...HandleOption) {
	hd := handler{h: h}
	for _, o := range opts {
		o(&hd)
	}
	s.mu.Lock()
	s.handlers[name] = hd
	s.mu.Unlock()
}

// DecodeBody decodes a JSON body strictly (aggregates.DecodeStrict: names matched exactly,
// unknown or repeated fields, trailing data and wrong types are invalid_argument).
func DecodeBody(body []byte, v any) error {
	if err := aggregates.DecodeStrict("body", body, v); err != nil {
		return err
	}
	return nil
}

// Query runs one query for caller (nil: unrestricted) and returns its JSON answer: the
// transports call it.
func (s *Server) Query(ctx context.Context, caller *aggregates.Caller, tenant, name string, body []byte) (answer []byte, err error) {
	return s.appendQuery(ctx, nil, caller, tenant, name, body)
}

// appendQuery is Query appending the answer to dst.
func (s *Server) appendQuery(ctx context.Context, dst []byte, caller *aggregates.Caller, tenant, name string, body []byte) (answer []byte, err error) {
	start := time.Now()
	defer func() { s.metrics.observe(name, start, err) }()
	if !events.ValidToken(tenant) {
		return nil, invalid("tenant %q is not 1 to 64 of A-Z a-z 0-9 _ -", tenant)
	}
	s.mu.RLock()
	h, ok := s.handlers[name]
	s.mu.RUnlock()
	// The identity first: a caller learns nothing, not even which queries exist, beyond
	// what it may ask.
	if err := caller.MayQuery(tenant, name); err != nil {
		return nil, err
	}
	if !ok {
		return nil, aggregates.Errorf(aggregates.CodeNotFound, "no query %q", name)
	}
	if len(body) > MaxBody {
		return nil, invalid("body of %d bytes is over the limit of %d", len(body), MaxBody)
	}
	if h.check {
		if q, minSeq, ok := parseCheck(body); ok {
			return s.check(ctx, dst, tenant, q, minSeq)
		}
	}
	// The handler decodes the whole body strictly; min_seq and as_of are read first, with the
	// same name matching, so that a wait never reads another field than the handler.
	var c Common
	if err := aggregates.DecodeLenient("body", body, &c); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	if err := s.engine.WaitFor(ctx, c.MinSeq); err != nil {
		return nil, err
	}
	r := Request{Tenant: tenant, Query: name, Body: body, Engine: s.engine}
	if len(c.AsOf) > 0 && string(c.AsOf) != "null" && !h.ownAsOf {
		at, err := ParseMoment(c.AsOf)
		if err != nil {
			return nil, err
		}
		if s.opts.AsOf == nil {
			return nil, invalid("as_of not supported")
		}
		eng, release, err := s.opts.AsOf(ctx, tenant, at)
		if err != nil {
			return nil, err
		}
		defer release()
		r.Engine, r.AsOf = eng, &at
	}
	a, err := h.h(ctx, r)
	if err != nil {
		return nil, timedOut(ctx, name, err)
	}
	out, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("projections: encode %s answer: %w", name, err)
	}
	return append(dst, out...), nil
}

// check answers a check body parseCheck read: what the check handler answers, without
// reflection.
func (s *Server) check(ctx context.Context, dst []byte, tenant string, q CheckQuery, minSeq uint64) ([]byte, error) {
	if minSeq > 0 { // only a wait needs the time bound (Engine.Check does not block)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.QueryTimeout)
		defer cancel()
		if err := s.engine.WaitFor(ctx, minSeq); err != nil {
			return nil, err
		}
	}
	a, err := s.engine.Check(ctx, tenant, q)
	if err != nil {
		return nil, timedOut(ctx, "check", err)
	}
	return appendCheckAnswer(dst, &a), nil
}

// timedOut turns the internal error of a query whose context ended into unavailable.
func timedOut(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil && codeOf(err) == aggregates.CodeInternal {
		return &aggregates.Error{Code: aggregates.CodeUnavailable, Op: name,
			Message: "the query did not finish in time", Err: err}
	}
	return err
}

// ParseMoment reads an as_of: a non-negative integer is a sequence, a string an RFC 3339 time
// (an offset is accepted and read as UTC).
func ParseMoment(raw json.RawMessage) (Moment, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Moment{}, invalid("as_of %s: %v", raw, err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Moment{}, invalid("as_of %q: want a stream sequence or an RFC 3339 time", s)
		}
		return Moment{Time: t.UTC()}, nil
	}
	seq, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return Moment{}, invalid("as_of %s: want a stream sequence or an RFC 3339 time", raw)
	}
	return Moment{Seq: seq}, nil
}

// errorBody is the wire form of a query error.
func errorBody(err error) []byte {
	code, msg := codeOf(err), err.Error()
	var e *aggregates.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
	return b
}

// codeOf is the code of err: the product's code, unavailable for an exhausted context.
func codeOf(err error) aggregates.Code {
	if err == nil {
		return ""
	}
	var e *aggregates.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return aggregates.CodeUnavailable
	}
	return aggregates.CodeInternal
}

// Close stops the NATS subscriptions and waits for the queries they are answering.
func (s *Server) Close() {
	s.natsMu.Lock()
	stops := s.stops
	s.stops = nil
	s.natsMu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

// Names lists the queries the server answers, sorted.
func (s *Server) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.handlers))
	for n := range s.handlers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
