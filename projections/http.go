package projections

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/acl-es/acl/aggregates"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the query API (POST /v1/tenants/{tenant}/{query}), /healthz, /readyz and,
// with a gatherer, /metrics.
func (s *Server) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tenants/{tenant}/{query}", s.serveQuery)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.opts.Ready != nil {
			if missing := s.opts.Ready(); missing != "" {
				w.Header().Set("Retry-After", "1")
				http.Error(w, missing, http.StatusServiceUnavailable)
				return
			}
		}
		if s.proj != nil && !s.proj.Ready() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "catching up with the event stream", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if g != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, aggregates.Errorf(aggregates.CodeNotFound, "no such path %s", r.URL.Path))
	})
	return mux
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, http.StatusMethodNotAllowed,
			invalid("method %s: queries are POST /v1/tenants/{tenant}/{query}", r.Method))
		return
	}
	var caller *aggregates.Caller
	if s.opts.Authenticate != nil {
		c, err := s.opts.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="acld"`)
			writeError(w, err)
			return
		}
		caller = c
	}
	buf := bufs.Get().(*[]byte)
	defer putBuf(buf)
	body, err := readBody((*buf)[:0], http.MaxBytesReader(w, r.Body, MaxBody), r.ContentLength)
	*buf = body[:0]
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeStatus(w, http.StatusRequestEntityTooLarge, invalid("body is over the limit of %d bytes", MaxBody))
			return
		}
		writeError(w, invalid("reading the body: %v", err))
		return
	}
	out := bufs.Get().(*[]byte)
	defer putBuf(out)
	answer, err := s.appendQuery(r.Context(), (*out)[:0], caller, r.PathValue("tenant"), r.PathValue("query"), body)
	if err != nil {
		if codeOf(err) == aggregates.CodeInternal {
			s.log.Error("query failed", "tenant", r.PathValue("tenant"), "query", r.PathValue("query"), "err", err)
		}
		writeError(w, err)
		return
	}
	*out = answer[:0]
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(answer))}
	w.Write(answer)
}

// jsonContentType is shared by every answer's header (net/http only reads it).
var jsonContentType = []string{"application/json"}

// bufs holds the request and answer buffers of HTTP queries: a check's are a few hundred bytes,
// and allocating them per request showed in the profile. A buffer grown past maxPooledBuf (a
// long visible page) is not kept.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		bufs.Put(b)
	}
}

// readBody appends the body to dst: at once when its length is announced, else as io.ReadAll.
func readBody(dst []byte, r io.Reader, n int64) ([]byte, error) {
	if n >= 0 && n <= MaxBody && int64(cap(dst)-len(dst)) < n+1 {
		dst = slices.Grow(dst, int(n)+1) // +1: the read that sees EOF needs room
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		m, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+m]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// HTTPStatus is the HTTP status of a query error (SPEC section 6): the query API's, and the
// console's pages'.
func HTTPStatus(err error) int { return httpStatus(codeOf(err)) }

// httpStatus maps an error code to its status (SPEC section 6).
func httpStatus(code aggregates.Code) int {
	switch code {
	case aggregates.CodeInvalidArgument, aggregates.CodeUnknownPermission:
		// SPEC section 6 would give unknown_permission 500 ("anything else"); it is the
		// caller's mistake, like invalid_argument, and a 500 would page an operator.
		return http.StatusBadRequest
	case aggregates.CodeUnauthenticated:
		return http.StatusUnauthorized
	case aggregates.CodeForbidden:
		return http.StatusForbidden
	case aggregates.CodeNotFound:
		return http.StatusNotFound
	case aggregates.CodeNotCaughtUp, aggregates.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) { writeStatus(w, httpStatus(codeOf(err)), err) }

// WriteError answers err as the query API does: its code's HTTP status and {"error": {code,
// message}}, for a program's handlers in front of the API (acld's loopback Host check).
func WriteError(w http.ResponseWriter, err error) { writeError(w, err) }

func writeStatus(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	w.Write(append(errorBody(err), '\n'))
}
